"""Fixtures of the dataplane integration tests: the lab `dt1` (see dataplane_lab.py), torn down whatever happens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dataplane_lab import HOSTS, LAB, DataplaneLab, base_world

from policy_dataplane.dataplane.lab_dataplane import Dataplane
from tests.integration.engine_variants import VARIANTS, after, scratch_options
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.probes import ProbeOptions, run_probes
from traffic.scratch_lab import ScratchLab


def wait_until_connected(endpoints: dict[str, ProbeEndpoint], attempts: int = 20) -> None:
    """Fresh veths need a moment (carrier, neighbours) before the first packet gets through: wait for
    every pod to answer a ping from every other endpoint, so no test mistakes start-up for a drop."""
    pairs = [Probe(endpoints[s], endpoints[d], Protocol.ICMP) for s in endpoints for d in endpoints
             if s != d and "/" in d]
    for _ in range(attempts):
        if all(r.delivered for r in run_probes(pairs, ProbeOptions(reply_timeout=0.3))):
            return
    raise RuntimeError("the scratch lab never became fully connected")


@pytest.fixture(scope="session", params=VARIANTS)
def scratch_lab(request: pytest.FixtureRequest) -> Iterator[tuple[ScratchLab, dict[str, ProbeEndpoint]]]:
    """On the netns engine, and again on Docker pods and on the Mininet engine (the `engines` subset)."""
    scratch = ScratchLab(LAB, pods_per_host=(3, 2), namespaces=2, **scratch_options(request.param))
    scratch.down()  # leftovers of an interrupted run
    try:
        endpoints = {e.name: e for e in scratch.up()}
        wait_until_connected(endpoints)
        yield scratch, endpoints
    finally:
        scratch.down()
        after(request.param)


@pytest.fixture
def lab(scratch_lab: tuple[ScratchLab, dict[str, ProbeEndpoint]]) -> Iterator[DataplaneLab]:
    yield from _lab(scratch_lab, "nftables")


@pytest.fixture
def iptables_lab(scratch_lab: tuple[ScratchLab, dict[str, ProbeEndpoint]]) -> Iterator[DataplaneLab]:
    yield from _lab(scratch_lab, "iptables")


def _lab(scratch_lab: tuple[ScratchLab, dict[str, ProbeEndpoint]], backend: str) -> Iterator[DataplaneLab]:
    scratch, endpoints = scratch_lab
    dp = Dataplane(LAB, backend=backend)
    pod_hosts = {(ns, pod): HOSTS[h] for h, ns, pod, _ in scratch.pods()}
    the_lab = DataplaneLab(scratch, endpoints, base_world(scratch), dp, pod_hosts)
    try:
        for host in HOSTS:
            dp.install_base(host)
        yield the_lab
    finally:
        for host in HOSTS:
            dp.remove(host)
