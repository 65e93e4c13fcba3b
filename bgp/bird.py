"""BIRD 2 route reflectors: configuration, process, and session state from `birdc show protocols all`.

A reflector is our interoperability check: a BGP implementation nobody here wrote must learn every host's
blocks and reflect them to every other client with the next hop untouched (iBGP reflection keeps it), and
the hosts must install what it reflects. It only listens (the clients dial) and installs nothing in its
own kernel: no `protocol kernel`, it routes no packets.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass

from bgp.files import ReflectorFiles, write_atomic
from bgp.sessions import ReflectorPlan
from topology import processes
from topology.engines import get_engine
from topology.kernel_text import quoted
from topology.names import LabPaths

START_TIMEOUT = 10.0


class ReflectorError(RuntimeError):
    pass


def protocol_name(client: str) -> str:
    """A BIRD symbol for a client's session (letters, digits and underscores only)."""
    return "c_" + re.sub(r"[^A-Za-z0-9_]", "_", client)


def render_bird_config(plan: ReflectorPlan) -> str:
    lines = [
        f"# BIRD 2 route reflector {plan.name}, written by netpol-lab (regenerated on start).",
        "log stderr all;",
        f"router id {plan.router_id};",
        "",
        "protocol device {",
        "}",
        "",
        "# The fabric subnet in the table, so the clients' next hops resolve.",
        "protocol direct {",
        "    ipv4;",
        '    interface "eth0";',
        "}",
        "",
        "template bgp rr_client {",
        f"    local {plan.local_address} as {plan.asn};",
        "    rr client;",
        f"    rr cluster id {plan.cluster_id};",
        f"    hold time {plan.hold_time};",
        "    passive on;",
        "    direct;  # clients share the fabric segment: single hop, next hops resolve directly",
        "    ipv4 {",
        "        import all;",
        "        export where source = RTS_BGP;  # reflect BGP routes only, never the fabric subnet",
        "        gateway direct;",
        "    };",
        "}",
    ]
    for client in plan.clients:
        lines += [
            "",
            f"protocol bgp {protocol_name(client.name)} from rr_client {{",
            f"    description {quoted(client.name, 'client name')};",
            f"    neighbor {client.address} as {plan.asn};",
            "}",
        ]
    return "\n".join(lines) + "\n"


def reflector_pid(paths: LabPaths, name: str) -> int | None:
    files = ReflectorFiles.of(paths, name)
    return processes.our_pid(files.pid, str(files.config))


def start_reflector(paths: LabPaths, plan: ReflectorPlan, *, wait: bool = True) -> int:
    """Start BIRD in the reflector's namespace (foreground process, our pid file); with `wait`, return
    once its control socket answers."""
    files = ReflectorFiles.of(paths, plan.name)
    if reflector_pid(paths, plan.name) is not None:
        raise ReflectorError(f"route reflector {plan.name} is already running")
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(files.config, render_bird_config(plan))
    check = subprocess.run(["bird", "-p", "-c", str(files.config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise ReflectorError(f"BIRD rejects the configuration of {plan.name}: {check.stderr.strip()}")
    files.socket.unlink(missing_ok=True)
    with open(files.log, "ab") as log:
        proc = get_engine().start_in(
            plan.netns, ["bird", "-f", "-c", str(files.config), "-s", str(files.socket)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    files.pid.write_text(f"{proc.pid}\n")
    if wait:
        deadline = time.monotonic() + START_TIMEOUT
        while birdc(paths, plan.name, "show status") is None:
            if not processes.running(proc.pid) or time.monotonic() > deadline:
                stop_reflector(paths, plan.name)
                raise ReflectorError(f"route reflector {plan.name} did not start: see {files.log}")
            time.sleep(0.05)
    return proc.pid


def reconfigure(paths: LabPaths, plan: ReflectorPlan) -> None:
    """Give a running reflector its new clients: rewrite its configuration, have BIRD check it, then
    `birdc configure` (sessions of unchanged clients stay up)."""
    files = ReflectorFiles.of(paths, plan.name)
    candidate = files.config.with_name(files.config.name + ".new")
    write_atomic(candidate, render_bird_config(plan))
    check = subprocess.run(["bird", "-p", "-c", str(candidate)], capture_output=True, text=True)
    if check.returncode != 0:
        candidate.unlink(missing_ok=True)
        raise ReflectorError(f"BIRD rejects the configuration of {plan.name}: {check.stderr.strip()}")
    candidate.replace(files.config)
    answer = birdc(paths, plan.name, "configure")
    if answer is None or "Reconfigured" not in answer and "Reconfiguration in progress" not in answer:
        raise ReflectorError(f"route reflector {plan.name} did not take its new configuration: {answer!r}")


def stop_reflector(paths: LabPaths, name: str) -> bool:
    files = ReflectorFiles.of(paths, name)
    stopped = processes.stop_ours(files.pid, str(files.config))
    files.socket.unlink(missing_ok=True)
    return stopped


def birdc(paths: LabPaths, name: str, command: str) -> str | None:
    """Output of one birdc command, None when the reflector does not answer."""
    files = ReflectorFiles.of(paths, name)
    if not files.socket.exists():
        return None
    done = subprocess.run(
        ["birdc", "-s", str(files.socket), *command.split()], capture_output=True, text=True, timeout=10
    )
    return done.stdout if done.returncode == 0 else None


@dataclass(frozen=True)
class BirdSession:
    protocol: str
    client: str  # from the description
    state: str  # BIRD's BGP state: Idle, Connect, Active, OpenSent, OpenConfirm, Established
    since: str
    imported: int
    exported: int
    reason: str = ""


# "c_h2       BGP        ---        start  09:29:08.606  Passive       Socket: Connection closed"
_HEADER = re.compile(r"^(\S+)\s+BGP\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$")
_ROUTES = re.compile(r"Routes:\s+(\d+) imported,(?: \d+ filtered,)? (\d+) exported")
_DESCRIPTION = re.compile(r"Description:\s+(.*)$")


def parse_show_protocols_all(text: str) -> list[BirdSession]:
    """BGP sessions in `birdc show protocols all` output (other protocols are skipped)."""
    sessions: list[BirdSession] = []
    current: dict[str, object] | None = None

    def flush() -> None:
        if current is not None:
            sessions.append(BirdSession(**current))  # type: ignore[arg-type]

    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            flush()
            protocol, _up_down, since, info, reason = header.groups()
            current = {"protocol": protocol, "client": protocol, "state": info, "since": since,
                       "imported": 0, "exported": 0, "reason": reason.strip()}
            continue
        if line and not line[0].isspace():
            flush()
            current = None
            continue
        if current is None:
            continue
        if m := _DESCRIPTION.search(line):
            current["client"] = m.group(1).strip()
        elif m := _ROUTES.search(line):
            current["imported"], current["exported"] = int(m.group(1)), int(m.group(2))
    flush()
    return sessions


def reflector_sessions(paths: LabPaths, name: str) -> list[BirdSession] | None:
    """The reflector's BGP sessions, None when it does not answer."""
    out = birdc(paths, name, "show protocols all")
    return None if out is None else parse_show_protocols_all(out)
