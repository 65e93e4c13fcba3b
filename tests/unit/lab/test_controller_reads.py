"""Warm reads: the controller answers `get` and `explain` (and draws them) from memory, from its socket thread, while its loop
is in the middle of a long pass (no root: the lab's dataplane is an in-memory backend)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from lab.apply import apply_sources
from lab.controller import daemon, launcher
from lab.controller.protocol import ControllerUnavailable
from lab.controller.reads import StoreView, get_answer
from lab.read_views import print_objects
from tests.unit.lab.test_warm_fake_backend import DB_POLICY, FakeLab, lab  # noqa: F401 (the fixture)


@pytest.fixture
def controller_in_a_long_pass(lab: FakeLab, monkeypatch: pytest.MonkeyPatch  # noqa: F811
                              ) -> Iterator[tuple[daemon.Controller, threading.Event]]:
    """A controller whose every pass blocks until the test releases it (as a 500-pod repair would)."""
    apply_sources(lab.runtime, [("db.yaml", DB_POLICY)])  # the warm world the controller programs from
    in_pass, release = threading.Event(), threading.Event()

    def long_pass(self: daemon.Controller) -> bool:
        in_pass.set()
        release.wait(30)
        self.passes += 1
        return True

    monkeypatch.setattr(daemon.Controller, "reconcile", long_pass)
    controller = daemon.Controller(lab.runtime.lab, resync=0.1)
    loop = threading.Thread(target=controller.serve, daemon=True)
    loop.start()
    assert in_pass.wait(10)
    try:
        yield controller, release
    finally:
        controller.stop()
        release.set()
        loop.join(10)
        controller.runtime.close()


def test_the_socket_answers_get_and_explain_while_a_pass_runs(lab: FakeLab, controller_in_a_long_pass  # noqa: F811
                                                              ) -> None:
    controller, release = controller_in_a_long_pass
    paths = lab.runtime.paths
    started = time.monotonic()
    assert launcher.ask(paths, {"op": "ping"}, timeout=5)["ok"]
    got = launcher.ask(paths, {"op": "get", "kinds": ["Pod", "NetworkPolicy"]}, timeout=5)
    assert {(o["kind"], o["name"]) for o in got["objects"]} == {
        ("NetworkPolicy", "db"), ("Pod", "api"), ("Pod", "db"), ("Pod", "web")}
    assert got == get_answer(StoreView().follow(lab.runtime.store), ["Pod", "NetworkPolicy"])  # = the store
    web = next(o for o in got["objects"] if o["name"] == "web")
    assert web["host"] == "node1" and web["ip"]
    def explain(src: str, as_json: bool) -> dict[str, Any]:
        args = {"src": src, "dst": "a/db", "protocol": "TCP", "port": 80, "json": as_json}
        return launcher.ask(paths, {"op": "show", "command": "explain", "args": args, "terminal": {}}, timeout=5)

    allowed, denied = json.loads(explain("a/web", True)["stdout"]), json.loads(explain("a/api", True)["stdout"])
    assert allowed["allowed"] is True and denied["allowed"] is False
    assert "a/db" in explain("a/api", False)["stdout"]
    unknown = explain("a/nope", False)
    assert unknown["exit"] == 1 and "a/nope" in unknown["stderr"] and not unknown["stdout"]
    shown = launcher.ask(paths, {"op": "show", "command": "get", "args": {"what": "pods", "json": False},
                                 "terminal": {"stdout_tty": True, "size": [120, 40]}}, timeout=5)
    drawn = Console(file=io.StringIO(), force_terminal=True, width=120, height=40, emoji=False, _environ={})
    print_objects("pods", get_answer(StoreView().follow(lab.runtime.store), ["Pod"])["objects"], False, drawn)
    assert shown["exit"] == 0 and shown["stdout"] == drawn.file.getvalue()  # what the command would draw
    assert time.monotonic() - started < 5  # all of it while the pass never ended
    assert controller.passes == 0
    release.set()


def test_a_read_says_plainly_when_no_controller_answers(lab: FakeLab) -> None:  # noqa: F811
    assert launcher.warm_read(lab.runtime.paths, {"op": "get", "kinds": ["Pod"]}) is None
    with pytest.raises(ControllerUnavailable):
        launcher.ask(lab.runtime.paths, {"op": "ping"}, timeout=1)
    assert "does not answer" in launcher.down_note(lab.runtime.paths)
