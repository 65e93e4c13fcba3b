"""Status read from the agents' files: shapes and the `stopped` state when no speaker runs."""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgp import status
from bgp.files import SpeakerFiles, write_json
from bgp.sessions import BgpNode, plan_sessions
from topology.names import LabPaths


def test_sessions_of_a_lab_without_processes_are_stopped(tmp_path: Path) -> None:
    paths = LabPaths("t", tmp_path, tmp_path)
    plan = plan_sessions([BgpNode("h1", "host", "n1", IPv4Address("10.99.0.1")),
                          BgpNode("h2", "host", "n2", IPv4Address("10.99.0.2")),
                          BgpNode("rr1", "reflector", "n3", IPv4Address("10.99.0.3"))], layout="route-reflector")
    found = status.sessions(paths, plan)
    assert {(s.speaker, s.peer, s.state) for s in found} == {
        ("h1", "rr1", "stopped"), ("h2", "rr1", "stopped"), ("rr1", "h1", "stopped"), ("rr1", "h2", "stopped")}
    assert found[0].as_dict()["peer_address"] == "10.99.0.3"


def test_routes_reads_the_agent_status_file(tmp_path: Path) -> None:
    paths = LabPaths("t", tmp_path, tmp_path)
    assert status.routes(paths, "h1") is None
    write_json(SpeakerFiles.of(paths, "h1").status, {
        "running": True, "updated": 1795425029.0, "announced": ["10.1.0.0/26"], "blackholes": ["10.1.0.0/26"],
        "routes": {"10.1.0.64/26": "10.99.0.2"}, "errors": [], "peers": {}})
    table = status.routes(paths, "h1")
    assert table is not None
    assert table.running is False  # the file says running, but no speaker process is ours
    assert table.routes == {IPv4Network("10.1.0.64/26"): "10.99.0.2"}
    assert table.as_dict()["blackholes"] == ["10.1.0.0/26"]
    assert table.updated == "2026-11-23T09:10:29+00:00"


def test_bird_times_become_iso(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")  # BIRD prints local time; we report UTC
    time.tzset()
    try:
        assert status._bird_time("09:29:08.606")[11:] in ("08:29:08+00:00", "07:29:08+00:00")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert status._bird_time("2026-11-20") == "2026-11-20"
