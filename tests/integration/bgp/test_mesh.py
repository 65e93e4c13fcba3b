"""Full iBGP mesh of real ExaBGP speakers in real namespaces: routes, withdrawal, hold time, restarts."""

from __future__ import annotations

import os
import signal
import time
from ipaddress import IPv4Network

import pytest
from bgp_lab import BgpLab, converged, wait_converged, wait_for

from bgp import speaker, status
from bgp.files import SpeakerFiles

pytestmark = pytest.mark.root


def allocate(lab: BgpLab, per_host: dict[str, int]) -> None:
    for host, count in per_host.items():
        for i in range(count):
            lab.ipam.allocate(f"default/{host}-pod{i}", host)


def all_established(lab: BgpLab) -> bool:
    assert lab.plan is not None
    sessions = status.sessions(lab.paths, lab.plan)
    return bool(sessions) and all(s.state == "established" for s in sessions)


def test_four_host_mesh_converges_with_blackholes_and_remote_blocks(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("bt1", hosts=4, externals=1, block_prefix=28)
    allocate(lab, {"h1": 20, "h2": 5, "h3": 1, "h4": 0})  # h1 needs two /28 blocks, h4 none
    plan = lab.start()
    wait_for("all sessions Established", lambda: all_established(lab))
    wait_converged(lab)
    assert len(status.sessions(lab.paths, plan)) == 2 * 10  # 5 speakers: 10 sessions, seen from both ends
    h1 = lab.routes("h1")
    assert sorted(p for p, nh in h1.items() if nh == "blackhole") == [IPv4Network("10.10.0.0/28"),
                                                                       IPv4Network("10.10.0.16/28")]
    assert h1[IPv4Network("10.10.0.32/28")] == "10.99.0.2"  # h2's block via h2
    assert lab.routes("h4") == {p: nh for p, nh in lab.expected_routes("h4").items()}
    assert all(nh != "blackhole" for nh in lab.routes("x1").values())  # externals learn, announce nothing
    def h2_status_shows_h1_block() -> bool:
        table = status.routes(lab.paths, "h2")
        return table is not None and table.routes.get(IPv4Network("10.10.0.0/28")) == "10.99.0.1"

    wait_for("h2's status file to list h1's block", h2_status_shows_h1_block, timeout=2)


def test_stopped_speaker_is_withdrawn_and_comes_back(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("bt2", hosts=3)
    allocate(lab, {"h1": 3, "h2": 3, "h3": 3})
    plan = lab.start(hold_time=3)
    wait_converged(lab)
    h2_block = lab.ipam.blocks_of("h2")[0]

    assert speaker.stop_speaker(lab.paths, "h2")
    wait_for("h2's block gone from h1 and h3", lambda: all(h2_block not in lab.routes(h) for h in ("h1", "h3")),
             timeout=3)
    assert lab.routes("h2") == {}  # the agent removed its own routes and blackholes on the way out
    assert speaker.speaker_pid(lab.paths, "h2") is None

    speaker.start_speaker(lab.paths, plan.speaker("h2"))
    wait_converged(lab)


def test_frozen_speaker_is_dropped_within_the_hold_time(make_lab) -> None:  # type: ignore[no-untyped-def]
    """A speaker that stops answering (SIGSTOP: no notification, no TCP reset) ages out by the hold timer."""
    lab = make_lab("bt3", hosts=3)
    allocate(lab, {"h1": 1, "h2": 1, "h3": 1})
    lab.start(hold_time=3)
    wait_converged(lab)
    h3_block = lab.ipam.blocks_of("h3")[0]
    pid = speaker.speaker_pid(lab.paths, "h3")
    agent = speaker.agent_pid(lab.paths, "h3")
    assert pid is not None and agent is not None
    os.kill(pid, signal.SIGSTOP)
    os.kill(agent, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        wait_for("h3's block dropped by h1 and h2",
                 lambda: all(h3_block not in lab.routes(h) for h in ("h1", "h2")), timeout=3 + 3)
        assert time.monotonic() - frozen_at >= 1.0  # it took the hold timer, not a reset
    finally:
        os.kill(agent, signal.SIGCONT)
        os.kill(pid, signal.SIGCONT)
    wait_converged(lab)  # the thawed speaker reconnects and everything comes back


def test_announcements_change_at_run_time(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("bt4", hosts=3, externals=1, block_prefix=30, cap=1)
    allocate(lab, {"h1": 1, "h2": 1})
    lab.start()
    wait_converged(lab)

    # New block: h3 gets its first pod.
    lab.ipam.allocate("default/new", "h3")
    lab.publish()
    wait_converged(lab)
    assert lab.ipam.blocks_of("h3")[0] in lab.routes("h1")

    # Borrowed /32: h1 (cap 1 block of 4) fills its block and borrows from h2's.
    allocate(lab, {"h1": 4})  # handles h1-pod0..3: pod0 exists, pods 1-3 fill the block
    borrowed = lab.ipam.allocate("default/borrower", "h1")
    assert lab.ipam.block_host(lab.ipam.config.block_of(borrowed)) != "h1"
    lab.publish()
    wait_converged(lab)
    assert lab.routes("h3")[IPv4Network(f"{borrowed}/32")] == "10.99.0.1"
    assert lab.routes("x1")[IPv4Network(f"{borrowed}/32")] == "10.99.0.1"

    # Released: the borrower gives the /32 back; h2 empties and releases its block.
    lab.ipam.release("default/borrower")
    lab.ipam.release("default/h2-pod0")
    lab.publish()
    wait_converged(lab)
    assert all(IPv4Network(f"{borrowed}/32") not in lab.routes(n) for n in lab.speakers())
    assert lab.routes("h2") == lab.expected_routes("h2")


def test_killed_agent_is_respawned_and_resyncs(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("bt5", hosts=3)
    allocate(lab, {"h1": 1, "h2": 1, "h3": 1})
    lab.start()
    wait_converged(lab)
    old = speaker.agent_pid(lab.paths, "h1")
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_for("a new agent on h1", lambda: speaker.agent_pid(lab.paths, "h1") not in (None, old))
    # The new agent removed what its predecessor left, then got the routes again by route refresh.
    wait_converged(lab)
    data = status.routes(lab.paths, "h1")
    assert data is not None and any("left by a previous agent" in e for e in data.errors)
    # And it keeps following changes.
    lab.ipam.release("default/h2-pod0")
    lab.publish()
    wait_converged(lab)
    assert converged(lab)
    assert SpeakerFiles.of(lab.paths, "h1").status.exists()
