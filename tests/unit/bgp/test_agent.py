"""The agent's reactions, with a fake kernel that refuses impossible operations (no root needed)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgp.agent import Agent
from bgp.files import SpeakerFiles, read_json, write_json
from bgp.routes import Install, KernelOp, Remove

CAPTURED = (Path(__file__).parent / "data" / "exabgp_5.0.15_messages.jsonl").read_text().splitlines()
A = IPv4Address("10.250.0.1")
BLOCK, BORROWED = IPv4Network("10.1.0.0/26"), IPv4Network("10.1.5.7/32")


class FakeKernel:
    """Routes of one namespace; fails like the kernel on a double add or a missing delete."""

    def __init__(self, stale: dict[IPv4Network, str] | None = None) -> None:
        self.routes: dict[IPv4Network, str] = dict(stale or {})

    def apply(self, ops: list[KernelOp]) -> list[str]:
        for op in ops:
            if isinstance(op, Install):
                self.routes[op.prefix] = str(op.next_hop)
            else:
                assert isinstance(op, Remove)
                assert op.prefix in self.routes, f"removing {op.prefix} that is not there"
                del self.routes[op.prefix]
        return []

    def blackhole(self, prefix: IPv4Network) -> None:
        assert prefix not in self.routes, f"blackhole over an existing route {prefix}"
        self.routes[prefix] = "blackhole"

    def remove_blackhole(self, prefix: IPv4Network) -> None:
        assert self.routes.pop(prefix) == "blackhole"

    def flush(self) -> int:
        count = len(self.routes)
        self.routes.clear()
        return count


@pytest.fixture
def files(tmp_path: Path) -> SpeakerFiles:
    return SpeakerFiles(tmp_path, "h2")


def make(files: SpeakerFiles, kernel: FakeKernel) -> tuple[Agent, list[str]]:
    sent: list[str] = []
    return Agent(files, kernel, sent.append, clock=lambda: 1000.0), sent


def test_start_announces_and_blackholes_blocks_only(files: SpeakerFiles) -> None:
    write_json(files.announcements, {"prefixes": ["10.2.0.0/26", "10.1.0.9/32"]})
    kernel = FakeKernel()
    agent, sent = make(files, kernel)
    agent.start()
    assert sent == ["announce route 10.1.0.9/32 next-hop self", "announce route 10.2.0.0/26 next-hop self"]
    assert kernel.routes == {IPv4Network("10.2.0.0/26"): "blackhole"}


def test_reload_withdraws_and_announces_the_difference(files: SpeakerFiles) -> None:
    write_json(files.announcements, {"prefixes": ["10.2.0.0/26", "10.2.0.64/26"]})
    kernel = FakeKernel()
    agent, sent = make(files, kernel)
    agent.start()
    sent.clear()
    write_json(files.announcements, {"prefixes": ["10.2.0.64/26", "10.2.0.128/26"]})
    agent.reload()
    assert sent == ["withdraw route 10.2.0.0/26 next-hop self", "announce route 10.2.0.128/26 next-hop self"]
    assert kernel.routes == {IPv4Network("10.2.0.64/26"): "blackhole", IPv4Network("10.2.0.128/26"): "blackhole"}


def test_replayed_session_installs_and_removes_routes_and_reports_status(files: SpeakerFiles) -> None:
    kernel = FakeKernel()
    agent, _ = make(files, kernel)
    agent.start()
    for line in CAPTURED[14:18]:  # connected, up, update (block + /32), end of RIB
        agent.on_line(line)
    assert kernel.routes == {BLOCK: str(A), BORROWED: str(A)}
    agent.write_status()
    status = read_json(files.status)
    assert status["peers"][str(A)]["state"] == "up"
    assert status["peers"][str(A)]["received"] == 2
    assert status["routes"] == {str(BLOCK): str(A), str(BORROWED): str(A)}
    for line in CAPTURED[18:20]:  # withdraw /32, session down
        agent.on_line(line)
    assert kernel.routes == {}
    assert agent.status()["peers"][str(A)]["state"] == "down"


def test_start_removes_routes_a_dead_agent_left_and_stop_removes_everything(files: SpeakerFiles) -> None:
    write_json(files.announcements, {"prefixes": ["10.2.0.0/26"]})
    kernel = FakeKernel(stale={IPv4Network("10.9.0.0/26"): "10.250.0.9"})
    agent, _ = make(files, kernel)
    agent.start()
    assert IPv4Network("10.9.0.0/26") not in kernel.routes
    assert any("left by a previous agent" in e for e in agent.errors)
    for line in CAPTURED[14:17]:
        agent.on_line(line)
    agent.stop()
    assert kernel.routes == {}
    assert agent.status()["running"] is False


def test_garbage_on_stdin_is_reported_not_fatal(files: SpeakerFiles) -> None:
    agent, _ = make(files, FakeKernel())
    agent.start()
    agent.on_line("this is not json")
    assert any("not JSON" in e for e in agent.errors)


def test_a_peer_that_comes_up_gets_our_prefixes_by_name(files: SpeakerFiles) -> None:
    """A neighbour added by a configuration reload (a node joined the running lab) was not there when the
    prefixes were announced: each session that comes up is sent them, addressed to that neighbour."""
    write_json(files.announcements, {"prefixes": ["10.2.0.0/26", "10.1.0.9/32"]})
    agent, sent = make(files, FakeKernel())
    agent.start()
    sent.clear()
    up = CAPTURED[1]  # ExaBGP's own "state: up" message for peer 10.250.0.2
    agent.on_line(up)
    assert sent == ["neighbor 10.250.0.2 announce route 10.1.0.9/32 next-hop self",
                    "neighbor 10.250.0.2 announce route 10.2.0.0/26 next-hop self"]
    agent.on_line(up)  # no change of state, nothing sent again
    assert len(sent) == 2
