"""The matrix's expected column asks the controller only for a bounded number of pairs, and a controller
that times out is not an error: the command builds the world itself (`lab bench` once died of both)."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from lab import traffic_hooks
from lab.controller import launcher
from lab.runtime import LabNotUp
from traffic.model import ProbeEndpoint

A = ProbeEndpoint("a/a", "na", IPv4Address("10.0.0.1"), "pod", "a", "h1")
B = ProbeEndpoint("a/b", "nb", IPv4Address("10.0.0.2"), "pod", "a", "h1")


def asked(monkeypatch: pytest.MonkeyPatch, pairs: int, answer: Any) -> list[int]:
    """The pair counts sent to the controller; the lab itself does not exist, so the cold path says so."""
    sent: list[int] = []

    def warm_read(paths: Any, message: dict[str, Any], timeout: float = 30.0) -> Any:
        sent.append(len(message["pairs"]))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(launcher, "warm_read", warm_read)
    with pytest.raises(LabNotUp):
        traffic_hooks.expected_verdicts("nolab", [(A, B)] * pairs, "tcp", 80)
    return sent


def test_a_whole_bank_of_pairs_is_never_sent_to_the_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    assert asked(monkeypatch, traffic_hooks.WARM_PAIRS + 1, None) == []
    assert asked(monkeypatch, traffic_hooks.WARM_PAIRS, None) == [traffic_hooks.WARM_PAIRS]


def test_a_controller_that_times_out_leaves_the_answer_to_the_cold_world(monkeypatch: pytest.MonkeyPatch) -> None:
    assert asked(monkeypatch, 2, TimeoutError("timed out")) == [2]  # then LabNotUp from the cold path
