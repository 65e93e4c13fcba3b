"""BIRD 2 route reflector between real ExaBGP speakers: BIRD learns and reflects, hosts install."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest
from bgp_lab import BgpLab, wait_converged, wait_for

from bgp import bird, speaker, status

pytestmark = pytest.mark.root


def reflector_established(lab: BgpLab) -> bool:
    assert lab.plan is not None
    found = [s for s in status.sessions(lab.paths, lab.plan) if s.speaker.startswith("rr")]
    return bool(found) and all(s.state == "established" for s in found)


def test_every_host_learns_every_other_hosts_blocks_through_bird(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("bt6", hosts=3, externals=1, reflectors=1, block_prefix=28)
    for host, count in {"h1": 17, "h2": 2, "h3": 1}.items():
        for i in range(count):
            lab.ipam.allocate(f"default/{host}-{i}", host)
    plan = lab.start(layout="route-reflector")
    assert [p.name for p in plan.speaker("h1").peers] == ["rr1"]
    wait_for("the reflector's sessions Established", lambda: reflector_established(lab))
    wait_converged(lab)
    # Reflection keeps the originator as next hop: h3 reaches h1's blocks via h1, not via the reflector.
    assert lab.routes("h3")[IPv4Network("10.10.0.16/28")] == "10.99.0.1"
    assert lab.routes("x1")[IPv4Network("10.10.0.32/28")] == "10.99.0.2"
    sessions = {s.client: s for s in bird.reflector_sessions(lab.paths, "rr1") or []}
    assert sessions["h1"].imported == 2 and sessions["h2"].imported == 1 and sessions["x1"].imported == 0
    assert sessions["x1"].exported == 4  # every host block is reflected to the external

    # A host going away is withdrawn by the reflector; its return is reflected again.
    speaker.stop_speaker(lab.paths, "h2")
    wait_for("h2's block withdrawn everywhere",
             lambda: all(IPv4Network("10.10.0.32/28") not in lab.routes(n) for n in ("h1", "h3", "x1")), timeout=5)
    speaker.start_speaker(lab.paths, plan.speaker("h2"))
    wait_converged(lab)


def test_two_reflectors_share_the_work(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("bt7", hosts=3, reflectors=2)
    for host in ("h1", "h2", "h3"):
        lab.ipam.allocate(f"default/{host}", host)
    lab.start(layout="route-reflector")
    wait_converged(lab)
    bird.stop_reflector(lab.paths, "rr1")
    wait_for("rr1's sessions seen down", lambda: any(s.state != "established" for s in
                                                     status.sessions(lab.paths, lab.plan)), timeout=5)
    lab.ipam.allocate("default/late", "h1", fixed="10.10.0.100")  # a new block while rr1 is away
    lab.publish()
    wait_converged(lab)  # rr2 alone carries it
