"""Applying link shapes to a running lab: tc qdiscs on both ends, and the delay line where netem is missing.

Everything happens inside the lab's namespaces, entered through the topology engine (`tc`, and
`iptables-restore --noflush` into the mangle table, which the lab's filters never touch); the delay line is a lab process with a pid
file in the lab's run directory, so `lab down` ends it like the responder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from topology import names, processes
from topology.delayline import MODULE
from topology.engine import Engine
from topology.engines import get_engine
from topology.netns import CommandFailed
from topology.shaping import Method, ShapedLink, delayline_rules, tc_commands

METHOD_ENV = "NETPOL_LAB_SHAPING"  # force netem or delayline (default: netem when the kernel has it)
FIRST_QUEUE = 100
READY_TIMEOUT = 30.0
PROCESS = "delayline"


class ShapingError(RuntimeError):
    pass


def _run_in(engine: Engine, netns: str, argv: list[str], stdin: str | None = None) -> None:
    try:
        engine.run_in(netns, argv, stdin)
    except CommandFailed as exc:
        raise ShapingError(str(exc)) from exc


def kernel_has_netem(engine: Engine, netns: str) -> bool:
    """Try a netem qdisc on the namespace's loopback (and take it away again)."""
    try:
        engine.run_in(netns, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
    except CommandFailed:
        return False
    engine.run_in(netns, ["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return True


def choose_method(engine: Engine, netns: str) -> Method:
    forced = os.environ.get(METHOD_ENV)
    if forced in ("netem", "delayline"):
        return forced
    if forced:
        raise ShapingError(f"{METHOD_ENV}={forced!r}: use netem or delayline")
    return "netem" if kernel_has_netem(engine, netns) else "delayline"


def queue_plan(links: Sequence[ShapedLink]) -> dict[str, list[tuple[ShapedLink, int]]]:
    """Pure: a queue number for each timed link, numbered per namespace (queues are per namespace)."""
    by_netns: dict[str, list[tuple[ShapedLink, int]]] = defaultdict(list)
    for link in links:
        if link.shape.timed:
            by_netns[link.netns].append((link, FIRST_QUEUE + len(by_netns[link.netns])))
    return dict(by_netns)


class LinkShaper:
    def __init__(self, paths: names.LabPaths, engine: Engine | None = None) -> None:
        self.paths = paths
        self.engine = engine or get_engine()

    @property
    def pid_file(self):  # type: ignore[no-untyped-def]
        return self.paths.pid_file(PROCESS)

    def apply(self, links: Sequence[ShapedLink]) -> Method | None:
        """Shape every link; returns the method used (None: nothing to shape)."""
        if not links:
            return None
        method = choose_method(self.engine, links[0].netns)
        for link in links:
            for netns, argv in tc_commands(link, method):
                _run_in(self.engine, netns, argv)
        if method == "delayline":
            self._start_delay_line(queue_plan(links))
        return method

    def _start_delay_line(self, queues: dict[str, list[tuple[ShapedLink, int]]]) -> None:
        if not queues:
            return
        config = self.paths.config_file(f"{PROCESS}.json")
        status = self.paths.config_file(f"{PROCESS}-status.json")
        entries = [{"netns": ns, "queue": q, "delay_ms": link.shape.delay_ms, "jitter_ms": link.shape.jitter_ms,
                    "loss_pct": link.shape.loss_pct} for ns, links in queues.items() for link, q in links]
        config.write_text(json.dumps({"queues": entries}, indent=1))
        status.unlink(missing_ok=True)
        argv = [sys.executable, "-m", MODULE, "--lab", self.paths.lab, "--config", str(config),
                "--pid-file", str(self.pid_file), "--status-file", str(status)]
        with open(self.paths.config_file(f"{PROCESS}.log"), "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while not status.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ShapingError(f"the delay line did not start; see {self.paths.config_file(f'{PROCESS}.log')}")
            time.sleep(0.02)
        # Queues bound: only now send packets their way (before, --queue-bypass would let them pass anyway).
        for ns, links in queues.items():
            _run_in(self.engine, ns, ["iptables-restore", "--noflush"], delayline_rules(links))

    def stop(self) -> bool:
        return processes.stop_ours(self.pid_file, marker=MODULE)
