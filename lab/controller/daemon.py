"""The controller's loop: observe, plan, act, answer requests; one process per lab.

    python -m lab.controller --lab demo --run-dir /run/netpol-lab/npl-demo [--resync 1.0]

Single-threaded, like Felix's dataplane loop: a pass runs on the resync timer and whenever a request asks
for one (a write waiting for its revision). A pass that cannot take the lab's change lock (a command is
changing the lab right now) is tried again shortly, so the controller never sees half a change.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lab.controller import events
from lab.controller.act import Executor, Memory
from lab.controller.desired import read_desired
from lab.controller.events import Event
from lab.controller.files import filters_file, lock_file, pid_file, socket_file
from lab.controller.machine_link import PUBLISH_EVERY, StoreWatch, publish_health
from lab.controller.observe import HostReader, announced, pod_namespaces, process_seen, responder_targets
from lab.controller.plan import broken_pods, plan
from lab.controller.protocol import encode, listen
from lab.controller.state import Desired, FilterRecord, Observed, ProcessRecord, SyncPolicy
from lab.fabric import Fabric
from lab.pod_plans import other_machines_pods
from lab.runtime import LabRuntime
from topology import names

BUSY_RETRY = 0.05  # a command holds the change lock: look again this soon
WAITING_PASS = 0.05  # while a write waits for its revision, pass this often


@dataclass
class Waiter:
    conn: socket.socket
    revision: int
    deadline: float


class AlreadyRunning(RuntimeError):
    pass


class Controller:
    def __init__(self, lab: str, resync: float) -> None:
        self.runtime = LabRuntime.open(lab)
        self.paths = self.runtime.paths
        self.resync = resync
        self.bgp = Fabric(self.runtime).speaker_plans()
        self.reader = HostReader(self.runtime.spec.dataplane)
        self.memory = Memory(filters=self._load_filters())
        self.executor = Executor(self.runtime, self.bgp, self.reader, self.memory)
        self._desired: Desired | None = None
        self.observed: Observed | None = None
        self.waiters: list[Waiter] = []
        self.host_errors: dict[str, str] = {}
        self.passes = 0
        self.last_pass_seconds = 0.0
        self.started = time.time()
        self._stop = False
        self._published = -PUBLISH_EVERY
        self._lock_file = open(self.paths.config_file("changes.lock"), "a")  # noqa: SIM115 (held for life)

    # state -------------------------------------------------------------------------------------------
    def desired(self) -> Desired:
        revision = self.runtime.store.revision
        if self._desired is None or self._desired.revision != revision:
            self._desired = read_desired(self.runtime, self.bgp)
        return self._desired

    def observe(self, desired: Desired) -> Observed:
        now = time.monotonic()
        hosts = {h: self.reader.read(names.host_netns(self.runtime.lab, h)) for h in desired.hosts}
        seen = {p.name: process_seen(self.paths, p) for p in desired.processes}
        for want in desired.processes:  # the process table follows what is seen
            row = self.memory.table.setdefault(want.name, ProcessRecord(want.name, want.kind, want.node, want.netns))
            now_seen = seen[want.name]
            if now_seen.pid is not None:
                row.pid, row.argv = now_seen.pid, now_seen.argv or row.argv
            if now_seen.pid is not None and not now_seen.helper_alive:
                row.helper_dead_since = row.helper_dead_since or now
            else:
                row.helper_dead_since = None
        return Observed(now, pod_namespaces(self.runtime.lab) - other_machines_pods(self.runtime), hosts, seen,
                        announced(self.paths, desired.announcements), responder_targets(self.paths),
                        self.memory.table, dict(self.memory.filters), self.memory.programmed_revision)

    def _refingerprinted(self, observed: Observed) -> Observed:
        """After repairs, only the filters' fingerprints are read again (one netlink request per host): what
        a waiting write needs; the rest is looked at by the next pass."""
        hosts = {h: replace(seen, fingerprint=self.reader.fingerprint(names.host_netns(self.runtime.lab, h)))
                 if seen.exists else seen for h, seen in observed.hosts.items()}
        return replace(observed, hosts=hosts, filters=dict(self.memory.filters),
                       programmed_revision=self.memory.programmed_revision)

    def _load_filters(self) -> dict[str, FilterRecord]:
        """What a previous controller wrote: adopted when the kernel still shows it (no reprogram at start)."""
        try:
            data = json.loads(filters_file(self.paths).read_text())
            return {h: FilterRecord(str(r["fingerprint"]), int(r["revision"])) for h, r in data.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def _save_filters(self) -> None:
        path = filters_file(self.paths)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({h: {"fingerprint": r.fingerprint, "revision": r.revision}
                                   for h, r in self.memory.filters.items()}))
        tmp.replace(path)

    # one pass ----------------------------------------------------------------------------------------
    def reconcile(self) -> bool:
        """One level-triggered pass; False when a command holds the change lock (try again soon)."""
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        started = time.perf_counter()
        try:
            desired = self.desired()
            observed = self.observe(desired)
            if self.host_errors.get("lab", "").startswith("the last pass"):
                del self.host_errors["lab"]  # this one got through
            actions = plan(desired, observed)
            for action in actions:
                self._carry_out(action)
            if actions:
                self._save_filters()
                observed = self._refingerprinted(observed)
            self.observed = observed
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self.passes += 1
        self.last_pass_seconds = time.perf_counter() - started
        return True

    def _carry_out(self, action: Any) -> None:
        started = time.perf_counter()
        what = type(action).__name__
        try:
            host = self.executor.run(action)
        except Exception as exc:  # noqa: BLE001 - a failed repair is an event; the next pass tries again
            host = getattr(action, "host", "") or getattr(action, "node", "")
            self.host_errors[host or "lab"] = f"{what} failed: {exc}"
            events.record(self.paths, Event(time.time(), "failed", what, f"{action.reason}: {exc}",
                                            time.perf_counter() - started, host))
            return
        self.host_errors.pop(host or "lab", None)
        kind = "sync" if isinstance(action, SyncPolicy) or not getattr(action, "drift", True) else "repair"
        event = Event(time.time(), kind, what, action.reason, time.perf_counter() - started, host)
        events.record(self.paths, event)
        if kind == "repair":
            self.memory.last_repair[host or "lab"] = f"{time.strftime('%H:%M:%S')} {what}"

    # health ------------------------------------------------------------------------------------------
    def host_in_sync(self, host: str, revision: int) -> str | None:
        """None when the host's filter holds `revision` as the controller wrote it, else why not."""
        observed = self.observed
        seen = observed.hosts.get(host) if observed else None
        record = self.memory.filters.get(host)
        if seen is None or not seen.exists:
            return f"{host}: namespace {names.host_netns(self.runtime.lab, host)} missing"
        if host in self.host_errors:
            return f"{host}: {self.host_errors[host]}"
        if "lab" in self.host_errors:
            return f"{host}: {self.host_errors['lab']}"
        if record is None:
            return f"{host}: filter not programmed yet"
        if record.revision < revision:
            return f"{host}: filter at revision {record.revision}, waiting for {revision}"
        if seen.fingerprint != record.fingerprint:
            return f"{host}: filter drift (generation {seen.fingerprint}, wrote {record.fingerprint})"
        return None

    def status(self) -> dict[str, Any]:
        """Health as it is now: a fresh look (read only), not the last pass's, so a fault shows at once."""
        desired = self.desired()
        observed = self.observed = self.observe(desired)
        routes_missing = Fabric(self.runtime).missing_routes()
        broken = broken_pods(desired, observed) if observed else {}
        hosts = {}
        degraded: list[str] = []
        for host in desired.hosts:
            speaker = self.memory.table.get(f"speaker {host}")
            seen = observed.processes.get(f"speaker {host}") if observed else None
            problem = self.host_in_sync(host, desired.revision)
            record = self.memory.filters.get(host)
            hosts[host] = {
                "speaker": seen.pid if seen and seen.pid else None,
                "agent": bool(seen and seen.pid and seen.helper_alive),
                "speaker_restarts": speaker.restarts if speaker else 0,
                "dataplane_revision": record.revision if record else None,
                "in_sync": problem is None,
                "problem": problem,
                "routes_missing": len(routes_missing.get(host, [])),
                "pods_broken": sum(1 for k in broken if desired.pods[k].host == host),
                "last_repair": self.memory.last_repair.get(host, ""),
            }
            if problem:
                degraded.append(problem)
        for row in self.memory.table.values():
            seen = observed.processes.get(row.name) if observed else None
            if seen is None or seen.pid is None:
                degraded.append(f"{row.name} is not running")
            elif not seen.helper_alive:
                degraded.append(f"{row.name}: route agent not running")
        degraded += [f"{node}: {len(p)} route(s) missing, e.g. {p[0]}" for node, p in sorted(routes_missing.items())]
        if broken:
            degraded.append(f"{len(broken)} pod(s) not plumbed, e.g. {next(iter(broken.values()))}")
        responder = observed.processes.get("responder") if observed else None
        return {
            "ok": True, "lab": self.runtime.lab, "pid": os.getpid(), "revision": desired.revision,
            "programmed_revision": self.memory.programmed_revision, "resync_interval": self.resync,
            "passes": self.passes, "last_pass_ms": round(self.last_pass_seconds * 1000, 1),
            "responder": responder.pid if responder else None,
            "hosts": hosts, "processes": [row.as_dict() for row in self.memory.table.values()],
            "degraded": degraded, "last_repair": self.memory.last_repair.get("lab", ""),
            "memory_kib": _rss_kib(),
        }

    # requests ----------------------------------------------------------------------------------------
    def handle(self, conn: socket.socket, request: dict[str, Any]) -> bool:
        """Answer a request; False when the answer comes later (a wait)."""
        op = request.get("op")
        if op == "ping":
            _send(conn, {"ok": True, "pid": os.getpid(), "revision": self.memory.programmed_revision})
        elif op == "status":
            _send(conn, self.status())
        elif op == "programs":
            programs = self.executor.dataplane().programs
            answer = {"ok": True, "revision": self.memory.programmed_revision, "programs": program_digests(programs)}
            if request.get("text"):
                from policy_dataplane.dataplane.nft.render import render_full

                answer["text"] = {host: render_full(p) for host, p in programs.items()}
            _send(conn, answer)
        elif op == "resync":
            while not self.reconcile():
                time.sleep(BUSY_RETRY)
            _send(conn, {"ok": True, "passes": self.passes})
        elif op == "wait":
            revision = int(request.get("revision", 0))
            timeout = float(request.get("timeout", 60.0))
            self.waiters.append(Waiter(conn, revision, time.monotonic() + timeout))
            return False
        else:
            _send(conn, {"ok": False, "error": f"unknown request {op!r}"})
        return True

    def answer_waiters(self) -> None:
        now = time.monotonic()
        for waiter in list(self.waiters):
            problems = [p for h in self.desired().hosts if (p := self.host_in_sync(h, waiter.revision))]
            if self.memory.programmed_revision < waiter.revision and not problems:
                problems = [f"the controller has not reached revision {waiter.revision} yet"]
            if problems and now < waiter.deadline:
                continue
            answer = {"ok": True} if not problems else {"ok": False, "error": "; ".join(problems)}
            _send(waiter.conn, answer)
            waiter.conn.close()
            self.waiters.remove(waiter)

    # the loop ----------------------------------------------------------------------------------------
    def serve(self) -> None:
        server = listen(socket_file(self.paths))
        selector = selectors.DefaultSelector()
        selector.register(server, selectors.EVENT_READ)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "_stop", True))
        events.record(self.paths, Event(time.time(), "start", "controller",
                                        f"pid {os.getpid()}, resync every {self.resync:g} s"))
        next_pass = 0.0
        watch = self._watch_store(selector)
        try:
            while not self._stop:
                now = time.monotonic()
                if now >= next_pass:
                    done = self._guarded_pass()
                    self.answer_waiters()
                    self._publish_health()
                    interval = WAITING_PASS if self.waiters else self.resync
                    next_pass = time.monotonic() + (interval if done else BUSY_RETRY)
                for key, _ in selector.select(max(0.0, next_pass - time.monotonic())):
                    if key.fileobj is watch and watch is not None:  # another machine changed the lab
                        watch.drain()
                        next_pass = 0.0
                    elif key.fileobj is server:
                        conn, _ = server.accept()
                        self._serve_one(conn)
                        if self.waiters:
                            next_pass = 0.0  # a write is waiting: reconcile now
        finally:
            for waiter in self.waiters:
                _send(waiter.conn, {"ok": False, "error": "the controller stopped"})
                waiter.conn.close()
            server.close()
            socket_file(self.paths).unlink(missing_ok=True)
            events.record(self.paths, Event(time.time(), "stop", "controller", f"pid {os.getpid()} stopped"))
            self.reader.close()

    # several machines (lab/controller/machine_link.py) ------------------------------------------------
    def _watch_store(self, selector: selectors.BaseSelector) -> StoreWatch | None:
        """On a machine of a lab spanning machines, a change written elsewhere wakes the loop at once."""
        if self.runtime.machine is None:
            return None
        watch = StoreWatch(self.paths, self.runtime.store.revision)
        selector.register(watch, selectors.EVENT_READ)
        return watch

    def _publish_health(self) -> None:
        machine = self.runtime.machine
        if machine is None or time.monotonic() - self._published < PUBLISH_EVERY:
            return
        self._published = time.monotonic()
        try:
            publish_health(self.paths, machine, self.status())
        except Exception as exc:  # noqa: BLE001 (the report is best effort; the next one tries again)
            events.record(self.paths, Event(time.time(), "failed", "health report", f"{type(exc).__name__}: {exc}"))

    def _guarded_pass(self) -> bool:
        """A pass that fails (the store unreadable for a moment, a namespace gone while read) is an event,
        and the next pass tries again: the controller itself does not die of it."""
        try:
            return self.reconcile()
        except Exception as exc:  # noqa: BLE001
            events.record(self.paths, Event(time.time(), "failed", "pass", f"{type(exc).__name__}: {exc}"))
            self.host_errors["lab"] = f"the last pass failed: {exc}"
            return True

    def _serve_one(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        try:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            request = json.loads(data or b"{}")
        except (OSError, ValueError) as exc:
            _send(conn, {"ok": False, "error": f"bad request: {exc}"})
            conn.close()
            return
        if self.handle(conn, request if isinstance(request, dict) else {}):
            conn.close()


def canonical(value: Any) -> Any:
    """A form of a program that equal programs share: dicts and sets sorted, sequences kept in order."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, [(f.name, canonical(getattr(value, f.name))) for f in dataclasses.fields(value)])
    if isinstance(value, dict):
        return sorted(((repr(canonical(k)), canonical(v)) for k, v in value.items()), key=lambda kv: kv[0])
    if isinstance(value, (set, frozenset)):
        return sorted(repr(canonical(v)) for v in value)
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def program_digests(programs: dict[str, Any]) -> dict[str, str]:
    """A digest of each host's compiled program: equal programs (as values) give equal digests."""
    import hashlib

    return {host: hashlib.sha256(repr(canonical(p)).encode()).hexdigest() for host, p in sorted(programs.items())}


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall(encode(message))
    except OSError:
        pass  # the client went away: nothing to tell


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def take_controller_lock(paths: names.LabPaths) -> Any:
    """One controller per lab: an exclusive lock held for the controller's life (released if it dies)."""
    handle = open(lock_file(paths), "a")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(f"a controller of lab {paths.lab!r} is already running") from None
    return handle


def main(lab: str, resync: float) -> int:
    paths = names.LabPaths.for_lab(lab)
    lock = take_controller_lock(paths)
    pid_file(paths).write_text(f"{os.getpid()}\n")
    try:
        Controller(lab, resync).serve()
    finally:
        pid_file(paths).unlink(missing_ok=True)
        lock.close()
    return 0
