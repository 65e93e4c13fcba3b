"""The responder's pods file round-trips and turns into the sockets to open."""

from __future__ import annotations

from pathlib import Path

import pytest

from topology.responder import Endpoint, wanted_endpoints
from topology.responder_ctl import read_responder_pods, write_responder_pods


def test_pods_file_round_trip_and_endpoints(plan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pods.json"
    write_responder_pods(path, plan.pods)
    pods = read_responder_pods(path)
    assert [t.key for t in pods.targets] == ["dev/web", "dev/api", "prod/db"]
    wanted, skipped = wanted_endpoints(pods)
    assert wanted == {
        Endpoint("npl-tt1-p-dev.web", "TCP", 80),
        Endpoint("npl-tt1-p-dev.web", "UDP", 53),
        Endpoint("npl-tt1-p-dev.api", "TCP", 8080),
        Endpoint("npl-tt1-p-prod.db", "TCP", 5432),
    }
    assert skipped == ["prod/db 9/SCTP"]


def test_a_broken_pods_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pods.json"
    path.write_text('{"targets": [{"key": "a", "netns": "n", "ports": [], "extra": 1}]}')
    with pytest.raises(ValueError):
        read_responder_pods(path)
