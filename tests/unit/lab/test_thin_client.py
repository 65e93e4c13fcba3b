"""The thin client of `lab status`, `lab get` and `lab explain`: which command lines it answers (the rest go
to the CLI), and the controller's consoles drawing what the caller's own console would (no root)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from lab import thin_client
from lab.controller.show import console_like, show
from lab.read_views import print_status


@pytest.mark.parametrize("argv, parsed", [
    (["status"], ("demo", "status", {"json": False})),
    (["status", "-l", "bank", "--json"], ("bank", "status", {"json": True})),
    (["status", "--lab=bank"], ("bank", "status", {"json": False})),
    (["get", "pods", "--lab", "bank"], ("bank", "get", {"json": False, "what": "pods"})),
    (["explain", "a/web", "a/db", "--port", "80", "-p", "UDP", "-l", "x"],
     ("x", "explain", {"json": False, "src": "a/web", "dst": "a/db", "port": 80, "protocol": "UDP"})),
    (["explain", "a/web", "1.2.3.4", "--protocol=ICMP", "--icmp-type", "8", "--icmp-code", "0"],
     ("demo", "explain", {"json": False, "src": "a/web", "dst": "1.2.3.4", "protocol": "ICMP", "icmp_type": 8,
                          "icmp_code": 0})),
])
def test_the_reads_it_answers(argv: list[str], parsed: tuple[str, str, dict[str, Any]]) -> None:
    assert thin_client.parse(argv) == parsed


@pytest.mark.parametrize("argv", [
    [], ["up"], ["status", "--help"], ["status", "extra"], ["get"], ["get", "pods", "svc"], ["status", "-l"],
    ["status", "-l", "--json"], ["status", "-lbank"], ["explain", "a/web"], ["explain", "a", "b", "-f", "x.yaml"],
    ["explain", "a", "b", "--port", "0"], ["explain", "a", "b", "--port", "http"], ["explain", "a", "b", "--port", "70000"],
    ["explain", "a", "b", "--icmp-type", "-1"], ["get", "pods", "--port", "80"], ["status", "--jsn"],
])
def test_everything_else_goes_to_the_cli(argv: list[str]) -> None:
    assert thin_client.parse(argv) is None


@given(st.lists(st.sampled_from(["status", "get", "explain", "pods", "a/b", "-l", "--lab", "--lab=x", "x", "--json",
                                 "--port", "80", "-p", "--help", "-f", "=", "", "--", "-"]), max_size=8))
def test_parse_accepts_only_whole_command_lines(argv: list[str]) -> None:
    parsed = thin_client.parse(argv)
    if parsed is not None:
        lab, command, args = parsed
        assert command == argv[0] and "--help" not in argv and "-f" not in argv
        assert not lab.startswith("-") and all(not str(v).startswith("-") for v in args.values())


def local_console(tty: bool, width: int, env: dict[str, str]) -> Console:
    return Console(file=io.StringIO(), force_terminal=tty, width=width, height=25, emoji=False, _environ=env)


@pytest.mark.parametrize("terminal, tty, width, colours", [
    ({"stdout_tty": True, "size": [132, 50], "env": {"TERM": "xterm-256color"}}, True, 132, "256"),
    ({"stdout_tty": True, "size": [100, 30], "env": {"TERM": "xterm", "COLORTERM": "truecolor"}}, True, 100, "truecolor"),
    ({"stdout_tty": True, "size": [100, 30], "env": {"TERM": "xterm", "NO_COLOR": "1"}}, True, 100, None),
    ({"stdout_tty": False, "size": None, "env": {"TERM": "xterm"}}, False, 80, None),
    ({"stdout_tty": False, "size": None, "env": {"COLUMNS": "200"}}, False, 200, None),
    ({}, False, 80, None),
])
def test_the_controller_console_is_shaped_like_the_callers(terminal: dict[str, Any], tty: bool, width: int,
                                                           colours: str | None) -> None:
    console = console_like(terminal, "stdout")
    assert (console.is_terminal, console.width) == (tty, width)
    assert (console.color_system if not console.no_color else None) == colours


class FakeController:
    """Answers as the controller does, for a two-host lab with one host out of sync."""

    def __init__(self, degraded: bool) -> None:
        self.degraded = degraded

    def status_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        hosts = {h: {"speaker": 10 + i, "agent": True, "dataplane_revision": 3, "in_sync": not (self.degraded and i),
                     "problem": "filter drift" if self.degraded and i else None, "routes_missing": 0,
                     "last_repair": ""} for i, h in enumerate(("node1", "node2"))}
        pods = [{"namespace": "dev", "name": f"web{i}", "host": "node1", "ip": f"10.0.0.{i}", "labels": {"app": "web"},
                 "ports": ["80/TCP"]} for i in range(40)]
        limit = request.get("pods_limit")
        return {"ok": True, "pid": 7, "revision": 3, "programmed_revision": 3, "resync_interval": 1.0,
                "last_pass_ms": 5.0, "memory_kib": 70000, "responder": 9, "hosts": hosts,
                "degraded": ["node2: filter drift"] if self.degraded else [],
                "lab_status": {"lab": "t", "status": "up", "revision": 3, "pool": "10.0.0.0/16", "bgp": "mesh",
                               "dataplane": "nftables", "engine": "netns", "nodes": [],
                               "pods": pods[:limit] if limit else pods, "pods_total": len(pods)}}

    def machines_health(self) -> dict[str, Any]:
        return {}

    def get_answer(self, kinds: list[str]) -> dict[str, Any]:
        return {"ok": True, "objects": []}

    def explain_verdict(self, request: dict[str, Any]) -> Any:
        return None


@pytest.mark.parametrize("degraded", [False, True])
def test_status_is_drawn_as_the_command_draws_it_and_exits_1_when_degraded(degraded: bool) -> None:
    terminal = {"stdout_tty": True, "size": [120, 40], "env": {"TERM": "xterm-256color"}}
    answer = show(FakeController(degraded), {"command": "status", "args": {"json": False}, "terminal": terminal})
    data = FakeController(degraded).status_answer({"pods_limit": 30})
    data, health = data.pop("lab_status"), data
    data.update(controller={**health, "running": True}, machines={})
    local = local_console(True, 120, {"TERM": "xterm-256color"})
    assert answer["exit"] == print_status(data, False, local) == (1 if degraded else 0)
    assert answer["stdout"] == local.file.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", answer["stdout"])  # colours off
    assert "... and 10 more pods" in plain and ("DEGRADED" in plain) == degraded


def test_reads_it_cannot_draw_are_declined_or_refused() -> None:
    controller = FakeController(False)
    services = show(controller, {"command": "get", "args": {"what": "services", "json": False}})
    assert not services["ok"]  # ClusterIPs and endpoints: the command reads them from the store
    unknown = show(controller, {"command": "get", "args": {"what": "secrets", "json": False}})
    assert unknown["exit"] == 1 and "not 'secrets'" in unknown["stderr"]
    assert not show(controller, {"command": "explain", "args": {"src": "a/b", "dst": "a/c"}})["ok"]  # not programmed
    assert not show(controller, {"command": "delete", "args": {}})["ok"]
