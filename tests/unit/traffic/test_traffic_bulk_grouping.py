"""The bulk prober without a kernel: probes grouped by source namespace, a worker's failure reaches the
caller (and stops the other workers) instead of dying with its thread."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address
from typing import Any

import pytest

from traffic.bulk import BulkTcpProbe
from traffic.model import Probe, ProbeEndpoint


class NoSockets:
    """A stand-in for ProbeEngine: remembers what was prepared; asking for a socket fails."""

    def __init__(self) -> None:
        self.prepared: list[Probe] = []

    def prepare(self, probes: Iterable[Probe]) -> None:
        self.prepared += list(probes)

    def sender(self, netns: str) -> Any:
        raise OSError(f"no namespace {netns}")


def endpoints(n: int) -> list[ProbeEndpoint]:
    return [ProbeEndpoint(f"ns/p{i}", f"netns-{i % 3}", IPv4Address(f"10.0.0.{i + 1}")) for i in range(n)]


def test_probes_are_grouped_by_source_namespace() -> None:
    pods, engine = endpoints(6), NoSockets()
    bulk = BulkTcpProbe(engine, pods, [0, 1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 0, 2], 80)  # type: ignore[arg-type]
    groups = {ns: [int(i) for i in indices] for ns, indices in bulk._groups}
    assert groups == {"netns-0": [0, 3, 6], "netns-1": [1, 4], "netns-2": [2, 5]}
    assert sorted(p.src.netns for p in engine.prepared) == ["netns-0", "netns-1", "netns-2"]
    assert bulk.outstanding == 7


def test_a_workers_failure_is_raised_to_the_caller() -> None:
    pods = endpoints(6)
    bulk = BulkTcpProbe(NoSockets(), pods, [0, 1, 2], [1, 2, 0], 80, workers=2)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="no namespace"):
        bulk.send_all()
