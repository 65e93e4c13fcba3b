"""The API process ExaBGP runs for each speaker: announces the host's prefixes, installs what it learns.

ExaBGP starts it (a `process` block, `encoder json`) inside the speaker's network namespace, with pipes on
stdin (JSON messages: session states and parsed updates) and stdout (API commands). It:
- announces and withdraws the prefixes of the announcements file, at start and on SIGHUP, and keeps a
  blackhole route per announced block (not per /32);
- installs learnt routes (`prefix via next-hop`, /32s included) with pyroute2 and removes them on
  withdrawal and when the session to that peer goes down;
- writes a status file (peers, announced prefixes, installed routes) for `lab bgp` / `lab routes`;
- on SIGTERM or end of input (ExaBGP stopping) removes every route it made. A restarted agent first
  removes what a dead predecessor left and asks the peers to send their routes again (route refresh).

Run as `python -m bgp.agent --run-dir DIR --name NAME` (files named by `bgp.files.SpeakerFiles`).
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol

from bgp import routes as r
from bgp.files import SpeakerFiles, read_json, write_json

STATUS_INTERVAL = 0.1  # at most ten status writes a second while updates stream in
MAX_ERRORS_KEPT = 20


class Kernel(Protocol):
    def apply(self, ops: Iterable[r.KernelOp]) -> list[str]: ...
    def blackhole(self, prefix: IPv4Network) -> None: ...
    def remove_blackhole(self, prefix: IPv4Network) -> None: ...
    def flush(self) -> int: ...


def read_announcements(files: SpeakerFiles) -> frozenset[IPv4Network]:
    data = read_json(files.announcements) or {}
    return frozenset(IPv4Network(p) for p in data.get("prefixes", []))


class Agent:
    """The agent's state and reactions; the event loop and signals live in `serve`."""

    def __init__(
        self, files: SpeakerFiles, kernel: Kernel, send: Callable[[str], None], clock: Callable[[], float] = time.time
    ) -> None:
        self.files = files
        self.kernel = kernel
        self.send = send
        self.clock = clock
        self.table = r.LearntRoutes()
        self.announced: frozenset[IPv4Network] = frozenset()
        self.blackholed: frozenset[IPv4Network] = frozenset()
        self.peers: dict[IPv4Address, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.running = False

    def start(self) -> None:
        previous = read_json(self.files.status) or {}
        respawned = previous.get("running") and previous.get("exabgp_pid") == os.getppid()
        stale = self.kernel.flush()
        if stale:
            self._error(f"removed {stale} routes left by a previous agent")
        self.running = True
        self.reload()
        if respawned:
            # ExaBGP keeps its sessions when it restarts a dead agent: ask the peers for their routes again.
            self.send("announce route-refresh ipv4 unicast")

    def reload(self) -> None:
        """Take the announcements file as the truth: withdraw, announce, fix blackholes."""
        try:
            desired = read_announcements(self.files)
        except ValueError as err:
            self._error(f"announcements file unreadable, keeping the current ones: {err}")
            return
        for command in r.announcement_commands(self.announced, desired):
            self.send(command)
        self.announced = desired
        self._set_blackholes(r.blackholes(desired))
        self._apply(self.table.set_local(desired))

    def on_line(self, line: str) -> None:
        try:
            events = r.parse_message(line)
        except r.MessageError as err:
            self._error(str(err))
            return
        for event in events:
            if isinstance(event, r.PeerState):
                self._peer_state(event)
            self._apply(self.table.apply(event))
        while self.table.refused:
            refused = self.table.refused.pop()
            self._error(f"refused {refused.prefix} via {refused.next_hop} from {refused.peer}: the next hop is inside it")

    def stop(self) -> None:
        """Remove every route we made (learnt ones and blackholes)."""
        self._apply(self.table.clear())
        self._set_blackholes(frozenset())
        self.kernel.flush()
        self.running = False
        for peer in self.peers.values():
            if peer["state"] == "up":
                peer.update(state="down", since=self.clock(), reason="agent stopped")

    def status(self) -> dict[str, Any]:
        peers = {
            str(address): {**info, "received": self.table.received_from(address)}
            for address, info in sorted(self.peers.items())
        }
        return {
            "speaker": self.files.name,
            "pid": os.getpid(),
            "exabgp_pid": os.getppid(),
            "running": self.running,
            "updated": self.clock(),
            "peers": peers,
            "announced": sorted(str(p) for p in sorted(self.announced)),
            "blackholes": sorted(str(p) for p in sorted(self.blackholed)),
            "routes": {str(p): str(nh) for p, nh in sorted(self.table.installed.items())},
            "errors": self.errors[-MAX_ERRORS_KEPT:],
        }

    def write_status(self) -> None:
        write_json(self.files.status, self.status())

    def _peer_state(self, event: r.PeerState) -> None:
        info = self.peers.setdefault(event.peer, {"state": "", "since": 0.0, "reason": ""})
        if info["state"] != event.state:
            info.update(state=event.state, since=event.time or self.clock(), reason=event.reason)
            if event.state == "up":
                # A neighbour ExaBGP was given later (a node joined the running lab: configuration reload)
                # is missing from what was announced before: announce our prefixes to it by name.
                for command in r.announcement_commands((), self.announced):
                    self.send(f"neighbor {event.peer} {command}")

    def _set_blackholes(self, wanted: frozenset[IPv4Network]) -> None:
        have = set(self.blackholed)
        for prefix in sorted(self.blackholed - wanted):
            self._kernel_call(self.kernel.remove_blackhole, prefix)
            have.discard(prefix)
        for prefix in sorted(wanted - self.blackholed):
            if self._kernel_call(self.kernel.blackhole, prefix):
                have.add(prefix)
        self.blackholed = frozenset(have)

    def _kernel_call(self, call: Callable[[IPv4Network], None], prefix: IPv4Network) -> bool:
        try:
            call(prefix)
        except Exception as err:  # netlink errors: report, keep serving the other routes
            self._error(f"{call.__name__} {prefix}: {err}")
            return False
        return True

    def _apply(self, ops: list[r.KernelOp]) -> None:
        for message in self.kernel.apply(ops):
            self._error(message)

    def _error(self, message: str) -> None:
        self.errors.append(f"{time.strftime('%H:%M:%S')} {message}")
        print(f"bgp-agent {self.files.name}: {message}", file=sys.stderr, flush=True)


def serve(agent: Agent, stdin_fd: int) -> None:
    """Event loop: stdin lines, SIGHUP (reload), SIGTERM / end of input (clean up and return)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    flags: set[str] = set()
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGHUP, lambda *_: flags.add("reload"))
    signal.signal(signal.SIGTERM, lambda *_: flags.add("stop"))
    signal.signal(signal.SIGINT, lambda *_: flags.add("stop"))
    # Only now may set_announcements find us: a SIGHUP before the handler would have killed us.
    write_pid(agent.files.agent_pid)
    selector = selectors.DefaultSelector()
    selector.register(stdin_fd, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""
    last_status, dirty = 0.0, True
    try:
        agent.start()
        while "stop" not in flags:
            timeout = max(0.0, last_status + STATUS_INTERVAL - time.monotonic()) if dirty else None
            for key, _ in selector.select(timeout):
                if key.fd == wake_r:
                    _drain(wake_r)
                    continue
                data = os.read(stdin_fd, 1 << 16)
                if not data:
                    flags.add("stop")
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        agent.on_line(line.decode(errors="replace"))
                dirty = True
            if "reload" in flags:
                flags.discard("reload")
                agent.reload()
                dirty = True
            if dirty and time.monotonic() - last_status >= STATUS_INTERVAL:
                agent.write_status()
                last_status, dirty = time.monotonic(), False
    finally:
        agent.stop()
        agent.write_status()
        agent.files.agent_pid.unlink(missing_ok=True)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def write_pid(path: Path) -> None:
    path.write_text(f"{os.getpid()}\n")


def _send_stdout(command: str) -> None:
    os.write(1, (command + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgp.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    from bgp.installer import KernelRoutes

    files = SpeakerFiles(args.run_dir, args.name)
    with KernelRoutes() as kernel:
        serve(Agent(files, kernel, _send_stdout), sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
