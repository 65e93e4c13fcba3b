"""The controller's event log and socket protocol, without root."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from lab.controller import events
from lab.controller.events import Event
from lab.controller.protocol import ControllerUnavailable, encode, listen, request
from topology.names import LabPaths


def paths_in(tmp_path: Path) -> LabPaths:
    paths = LabPaths("t1", tmp_path / "state", tmp_path / "run")
    paths.run_dir.mkdir(parents=True)
    return paths


def test_events_are_appended_and_read_back_in_order(tmp_path):
    paths = paths_in(tmp_path)
    assert events.read(paths) == []
    first = Event(1.0, "repair", "RestartProcess", "speaker h1 is not running", 0.2, "h1")
    second = Event(2.0, "failed", "ReprogramHost", "h2: nft refused", 0.0, "h2")
    events.record(paths, first)
    events.record(paths, second)
    with open(events.events_file(paths), "a") as handle:
        handle.write('{"cut short')  # a crash mid-line is skipped, not fatal
    assert events.read(paths) == [first, second]
    assert stat.S_IMODE(os.stat(events.events_file(paths)).st_mode) == 0o600
    follower = events.follow(paths, poll=0.01)
    assert [next(follower), next(follower)] == [first, second]
    assert "RestartProcess: speaker h1 is not running (200 ms)" in first.line()


@pytest.mark.parametrize("depth", [1, 12])  # 12 nested directories: past the 108-byte socket address limit
def test_a_request_gets_its_answer_over_a_0600_socket(tmp_path, depth):
    where = tmp_path.joinpath(*["a-long-directory-name"] * depth)
    where.mkdir(parents=True)
    path = where / "controller.sock"
    server = listen(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def answer_one() -> None:
        conn, _ = server.accept()
        data = b""
        while not data.endswith(b"\n"):
            data += conn.recv(1024)
        conn.sendall(encode({"ok": True, "echo": data.decode().strip()}))
        conn.close()

    thread = threading.Thread(target=answer_one)
    thread.start()
    answer = request(path, {"op": "ping"})
    thread.join()
    server.close()
    assert answer == {"ok": True, "echo": '{"op": "ping"}'}


def test_nobody_listening_is_a_clear_error(tmp_path):
    with pytest.raises(ControllerUnavailable, match="no controller answers"):
        request(tmp_path / "controller.sock", {"op": "ping"})


def test_program_digests_ignore_insertion_order_but_not_rule_order():
    from ipaddress import IPv4Network

    from lab.controller.daemon import program_digests
    from policy_dataplane.dataplane.hostprogram import Dir, HostProgram, PolicyProgram, RuleProgram, Verdict

    a, b = IPv4Network("10.0.0.1/32"), IPv4Network("10.0.0.2/32")
    deny, allow = RuleProgram(Verdict.DENY), RuleProgram(Verdict.ALLOW, protocol=6)
    one = HostProgram(address_sets={"s1": frozenset({a}), "s2": frozenset({a, b})},
                      policies={"pi-x": PolicyProgram("x", Dir.INGRESS, (deny, allow))})
    same = HostProgram(address_sets={"s2": frozenset({b, a}), "s1": frozenset({a})},
                       policies={"pi-x": PolicyProgram("x", Dir.INGRESS, (deny, allow))})
    reordered = HostProgram(address_sets=dict(one.address_sets),
                            policies={"pi-x": PolicyProgram("x", Dir.INGRESS, (allow, deny))})
    assert program_digests({"h": one}) == program_digests({"h": same})
    assert program_digests({"h": one}) != program_digests({"h": reordered})


def test_health_renders_each_host_and_says_plainly_when_the_controller_is_down(capsys):
    from lab.summary import render_health

    host = {"speaker": 41, "agent": True, "speaker_restarts": 1, "dataplane_revision": 9, "in_sync": False,
            "problem": "node2: filter drift (generation 31, wrote 30)", "routes_missing": 0, "pods_broken": 0,
            "last_repair": "16:10:15 ReprogramHost"}
    health = {"running": True, "pid": 7, "revision": 9, "programmed_revision": 9, "resync_interval": 1.0,
              "last_pass_ms": 3.2, "memory_kib": 51200, "responder": None, "hosts": {"node2": host},
              "degraded": ["node2: filter drift (generation 31, wrote 30)", "responder is not running"]}
    render_health(health)
    out = capsys.readouterr().out
    assert "DEGRADED" in out and "node2" in out and "responder is not running" in out
    render_health({"running": False, "degraded": ["the controller is down: no controller answers"]})
    assert "controller: DOWN" in capsys.readouterr().out
