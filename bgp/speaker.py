"""ExaBGP speakers: render the configuration of a speaker plan, start and stop the process, feed it prefixes.

One ExaBGP per host (and per external learn-only node), started inside that node's namespace by the lab's
topology engine, so that it and its agent (`bgp.agent`) live there. The environment avoids ExaBGP's
pitfalls (docs/ARCHITECTURE.md, ExaBGP): it listens on the node's fabric address (passive peers need it),
runs as root (the agent installs routes), does not wait for API acknowledgements, opens no CLI pipes, does
not daemonize, writes no pid file of its own, and logs to a file in the run directory.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network

from bgp.files import SpeakerFiles, write_atomic, write_json
from bgp.sessions import SpeakerPlan
from topology import processes
from topology.engines import get_engine
from topology.kernel_text import token
from topology.names import LabPaths

AGENT_PROCESS = "agent"
START_TIMEOUT = 20.0
REACTOR_SPEED = 10.0


class SpeakerError(RuntimeError):
    pass


def agent_argv(files: SpeakerFiles, python: str | None = None) -> list[str]:
    return [*processes.python_module(python), "bgp.agent", "--name", files.name, "--run-dir", str(files.run_dir)]


def _agent_marker(files: SpeakerFiles) -> str:
    # The run dir follows the name, so h1's marker is not a prefix of h10's.
    return f"--name {files.name} --run-dir {files.run_dir}"


def render_exabgp_config(plan: SpeakerPlan, agent: Sequence[str]) -> str:
    """The ExaBGP 5.0 configuration of one speaker; `agent` is the argv of its API process."""
    for arg in agent:
        if not arg or any(c in arg for c in " \t\n;{}'\""):
            raise SpeakerError(f"agent argument {arg!r} cannot be written into an ExaBGP configuration")
    lines = [
        f"# ExaBGP configuration of {plan.role} {plan.name}, written by netpol-lab (regenerated on start).",
        f"process {AGENT_PROCESS} {{",
        f"    run {' '.join(agent)};",
        "    encoder json;",
        "}",
    ]
    for peer in plan.peers:
        lines += [
            "",
            f"neighbor {token(peer.address)} {{",
            f"    description {token(peer.name, 'peer name')};",
            f"    router-id {plan.router_id};",
            f"    local-address {plan.local_address};",
            f"    local-as {plan.asn};",
            f"    peer-as {plan.asn};",
            f"    hold-time {plan.hold_time};",
            f"    passive {'true' if peer.passive else 'false'};",
            "    adj-rib-out true;  # resend our routes when a session comes back",
            "    capability {",
            "        route-refresh;  # a respawned agent asks its peers for their routes again",
            "    }",
            "    family {",
            "        ipv4 unicast;",
            "    }",
            "    api {",
            f"        processes [ {AGENT_PROCESS} ];",
            "        receive {",
            "            parsed;",
            "            update;",
            "        }",
            "        neighbor-changes;",
            "    }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def exabgp_environment(plan: SpeakerPlan) -> dict[str, str]:
    return {
        "exabgp.tcp.bind": str(plan.local_address),
        "exabgp.tcp.port": "179",
        "exabgp.daemon.user": "root",
        "exabgp.daemon.daemonize": "false",
        "exabgp.daemon.pid": "",
        "exabgp.daemon.drop": "false",
        "exabgp.api.ack": "false",
        "exabgp.api.cli": "false",
        "exabgp.api.respawn": "true",
        "exabgp.log.destination": "stdout",
        "exabgp.log.level": "INFO",
        "exabgp.log.statistics": "false",
        "exabgp.log.short": "true",
        # The reactor polls every speed/100 s when idle: 10 ms by default cost a 16-host mesh 0.67 cores
        # doing nothing; 100 ms costs 0.13 (bench/bgp_convergence.py). Sockets and the agent's pipe
        # still wake it at once, so convergence does not slow down.
        "exabgp.reactor.speed": str(REACTOR_SPEED),
    }


def exabgp_argv() -> list[str]:
    """ExaBGP from this interpreter's environment (where pip put it with the lab), not whatever is on PATH."""
    if importlib.util.find_spec("exabgp") is None:
        raise SpeakerError(f"exabgp is not installed for {sys.executable}: pip install exabgp==5.0.15")
    return [*processes.python_module(), "exabgp"]


def speaker_pid(paths: LabPaths, name: str) -> int | None:
    files = SpeakerFiles.of(paths, name)
    return processes.our_pid(files.pid, str(files.config))


def agent_pid(paths: LabPaths, name: str) -> int | None:
    files = SpeakerFiles.of(paths, name)
    return processes.our_pid(files.agent_pid, _agent_marker(files))


def launch_speaker(paths: LabPaths, plan: SpeakerPlan) -> int:
    """Start ExaBGP for the plan without waiting for it; returns its pid (also in the pid file)."""
    files = SpeakerFiles.of(paths, plan.name)
    if speaker_pid(paths, plan.name) is not None:
        raise SpeakerError(f"the BGP speaker of {plan.name} is already running")
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(files.config, render_exabgp_config(plan, agent_argv(files)))
    if not files.announcements.exists():
        write_json(files.announcements, {"prefixes": []})
    files.agent_pid.unlink(missing_ok=True)
    files.status.unlink(missing_ok=True)
    env = {**os.environ, **exabgp_environment(plan)}
    with open(files.log, "ab") as log:
        proc = get_engine().start_in(
            plan.netns, [*exabgp_argv(), str(files.config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.run_dir,
            start_new_session=True,  # a Ctrl-C in the lab's terminal must not kill the fabric
        )
    files.pid.write_text(f"{proc.pid}\n")
    return proc.pid


def wait_speakers(paths: LabPaths, pids: dict[str, int], timeout: float = START_TIMEOUT) -> None:
    """Until each speaker runs its agent (configuration parsed, API process started)."""
    deadline = time.monotonic() + timeout
    waiting = dict(pids)
    while waiting:
        for name, pid in list(waiting.items()):
            if not processes.running(pid):
                processes.wait_gone(pid, 0)
                raise SpeakerError(f"the BGP speaker of {name} exited at start: {_log_tail(paths, name)}")
            if agent_pid(paths, name) is not None:
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(sorted(waiting))
            raise SpeakerError(f"BGP speakers not ready after {timeout:.0f}s: {names}")
        if waiting:
            time.sleep(0.05)


def start_speaker(paths: LabPaths, plan: SpeakerPlan, *, wait: bool = True) -> int:
    """Start one speaker; with `wait`, return once its agent runs (raise with the log tail otherwise)."""
    pid = launch_speaker(paths, plan)
    if wait:
        try:
            wait_speakers(paths, {plan.name: pid})
        except SpeakerError:
            stop_speaker(paths, plan.name)
            raise
    return pid


def start_speakers(paths: LabPaths, plans: Iterable[SpeakerPlan], timeout: float = START_TIMEOUT) -> dict[str, int]:
    """Start several speakers at once (ExaBGP takes ~1 s to start: in parallel, not one after another)."""
    pids: dict[str, int] = {}
    try:
        for plan in plans:
            pids[plan.name] = launch_speaker(paths, plan)
        wait_speakers(paths, pids, timeout)
    except BaseException:
        for name in pids:
            stop_speaker(paths, name)
        raise
    return pids


def stop_speaker(paths: LabPaths, name: str) -> bool:
    """Stop ExaBGP (its agent removes the routes it made and exits with it); True if one was running.
    ExaBGP tells its peers (a BGP notification), so they drop our routes at once."""
    files = SpeakerFiles.of(paths, name)
    agent = agent_pid(paths, name)
    stopped = processes.stop_ours(files.pid, str(files.config), grace=5.0)
    if agent is not None and not processes.wait_gone(agent, 3.0):
        processes.stop_ours(files.agent_pid, _agent_marker(files))
    return stopped


def reconfigure(paths: LabPaths, plan: SpeakerPlan) -> bool:
    """Give a running speaker its new peers (a node joined or left the lab): rewrite its configuration and
    send SIGUSR1, on which ExaBGP reloads it, opening sessions to new neighbours and closing those that
    are gone while unchanged ones stay up. True when a running speaker was told."""
    files = SpeakerFiles.of(paths, plan.name)
    write_atomic(files.config, render_exabgp_config(plan, agent_argv(files)))
    return processes.signal_ours(files.pid, str(files.config), signal.SIGUSR1)


def set_announcements(
    paths: LabPaths, name: str, prefixes: Iterable[IPv4Network], *, notify: bool = True
) -> bool:
    """Write what the speaker must announce (its blocks and borrowed /32s) and tell its agent.
    True when a running agent was notified."""
    files = SpeakerFiles.of(paths, name)
    write_json(files.announcements, {"prefixes": [str(p) for p in sorted(IPv4Network(p) for p in prefixes)]})
    if not notify:
        return False
    return processes.signal_ours(files.agent_pid, _agent_marker(files), signal.SIGHUP)


def _log_tail(paths: LabPaths, name: str, lines: int = 8) -> str:
    try:
        text = SpeakerFiles.of(paths, name).log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:])
