"""The controller's loop: observe, plan, act, answer requests; one process per lab.

    python -m lab.controller --lab demo --run-dir /run/netpol-lab/npl-demo [--resync 1.0]

Two threads. The main one is the loop, like Felix's dataplane loop: a pass runs on the resync timer and
whenever a request asks for one (a write waiting for its revision). A pass that cannot take the lab's change
lock (a command is changing the lab right now) is tried again shortly, so the controller never sees half a
change. The socket thread answers requests meanwhile, so `lab status`, `get` and `explain` answer while a
long pass runs: it has its own store connection and netlink sockets, and takes the world lock only for what
the pass changes (the warm world and programs, held by a pass only while it syncs the filters).
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lab.controller import events, filter_records
from lab.controller.act import Executor, Memory
from lab.controller.desired import read_desired
from lab.controller.events import Event
from lab.controller.files import lock_file, pid_file, socket_file
from lab.controller.machine_link import PUBLISH_EVERY, StoreWatch, publish_health
from lab.controller.observe import HostReader, announced, pod_namespaces, process_seen, responder_targets
from lab.controller.plan import broken_pods, missing_routes, plan
from lab.controller.protocol import encode, listen
from lab.controller.reads import StoreView, explain_verdict, get_answer
from lab.controller.state import Desired, Observed, ProcessRecord, ReprogramHost, SyncPolicy
from lab.fabric import Fabric
from lab.pod_plans import other_machines_pods
from lab.runtime import LabRuntime
from lab.store import ObjectKey
from services import daemon_ctl
from topology import names

BUSY_RETRY = 0.05  # a command holds the change lock: look again this soon
WAITING_PASS = 0.05  # while a write waits for its revision, pass this often
FOLLOW_UP = 0.2  # after a pass that only programmed a write: the full look this soon (unless a write comes)
ACCEPT_POLL = 0.5  # the socket thread looks at the stop flag this often
PLACEMENT_KINDS = frozenset({"Pod", "Service", "ExternalService"})  # what the desired state is made of


@dataclass
class Waiter:
    conn: socket.socket
    revision: int
    deadline: float


class AlreadyRunning(RuntimeError):
    pass


class _WriteWaiting(Exception):
    """A write came in while a pass looked at the lab: the pass gives way and starts again after it."""


class Controller:
    def __init__(self, lab: str, resync: float) -> None:
        self.runtime = LabRuntime.open(lab)
        self.paths = self.runtime.paths
        self.resync = resync
        self.bgp = Fabric(self.runtime).speaker_plans()
        self.reader = HostReader(self.runtime.spec.dataplane)
        self.memory = Memory(filters=filter_records.load(self.paths))  # adopted while the kernel still shows them
        self.executor = Executor(self.runtime, self.bgp, self.reader, self.memory)
        self._desired: Desired | None = None
        self._desired_placements: list[Any] = []
        self._placements_version = -1  # the store's placements_version when they were read
        self._pod_shapes: dict[ObjectKey, str] = {}  # each pod's document without its labels, at the last read
        self.observed: Observed | None = None
        self.waiters: list[Waiter] = []
        self.host_errors: dict[str, str] = {}
        self.passes = 0
        self.last_pass_seconds = 0.0
        self.started = time.time()
        self._stop = False
        self._published = -PUBLISH_EVERY
        self._lock_file = open(self.paths.config_file("changes.lock"), "a")  # noqa: SIM115 (held for life)
        self.world_lock = threading.RLock()  # the warm world and programs: a filter sync, or a reader
        self._waiters_lock = threading.Lock()
        self._wake = threading.Event()  # a request wants a pass now
        self._passed = threading.Condition()  # notified after every pass
        self._resync_wanted = False
        self._frozen = False  # gc.freeze() done after the first pass
        self._follow_up = False  # the last pass only programmed a write: the full look is still due
        self.nodes = _node_addresses(self.runtime)  # name -> fabric address (the lab file's: fixed)
        self._reads: _ReadSide | None = None  # the socket thread's own store and netlink sockets
        self.store_view = StoreView()

    # state -------------------------------------------------------------------------------------------
    def desired(self) -> Desired:
        """The desired state at the store's revision. A revision that wrote no pod, Service or placement (a
        policy or namespace change), or only relabelled pods, leaves it as it was: read again, it costs
        ~0.2 s at bank scale, held under the change lock that the next write waits for."""
        store = self.runtime.store
        revision = store.revision
        previous = self._desired
        if previous is not None and previous.revision == revision:
            return previous
        version = store.placements_version
        placements = self._desired_placements if version == self._placements_version else store.placements()
        if previous is not None and placements == self._desired_placements and all(
                self._leaves_desired_alone(key, doc) for key, doc in store.objects_since(previous.revision)):
            self._desired = replace(previous, revision=revision)
        else:
            self._desired = read_desired(self.runtime, self.bgp)
            self._desired_placements, self._placements_version = placements, version
            self._pod_shapes = {key: pod_shape(doc) for key, doc in self.runtime.pod_documents()}
        return self._desired

    def _leaves_desired_alone(self, key: ObjectKey, doc: dict[str, Any]) -> bool:
        """A pod's labels decide policy, not plumbing: a pod whose document changed only in its labels (`lab
        label`) keeps its namespace, interface, address and responder sockets."""
        if key.kind not in PLACEMENT_KINDS:
            return True
        return key.kind == "Pod" and key in self._pod_shapes and self._pod_shapes[key] == pod_shape(doc)

    def observe(self, desired: Desired, reader: HostReader | None = None, follow_table: bool = True,
                give_way: bool = False) -> Observed:
        """`reader`: the socket thread's own (netlink sockets are not shared); `follow_table`: only the loop
        updates the process table; `give_way`: raise _WriteWaiting as soon as a write waits."""
        now = time.monotonic()
        reader = reader or self.reader
        hosts = {}
        for host in desired.hosts:
            if give_way and self._write_waiting():
                raise _WriteWaiting
            hosts[host] = reader.read(names.host_netns(self.runtime.lab, host))
        seen = {p.name: process_seen(self.paths, p) for p in desired.processes}
        for want in desired.processes if follow_table else ():  # the process table follows what is seen
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
                        dict(self.memory.table), dict(self.memory.filters), self.memory.programmed_revision,
                        daemon_ctl.config_file(self.paths).exists(), daemon_ctl.running_pid(self.paths))

    def _refingerprinted(self, observed: Observed) -> Observed:
        """After repairs, only the filters' fingerprints are read again (one netlink request per host): what
        a waiting write needs; the rest is looked at by the next pass."""
        hosts = {h: replace(seen, fingerprint=self.reader.fingerprint(names.host_netns(self.runtime.lab, h)))
                 if seen.exists else seen for h, seen in observed.hosts.items()}
        return replace(observed, hosts=hosts, filters=dict(self.memory.filters),
                       programmed_revision=self.memory.programmed_revision)

    # one pass ----------------------------------------------------------------------------------------
    def reconcile(self) -> bool:
        """One level-triggered pass; False when a command holds the change lock (try again soon).

        The change lock is held to read the store and while repairs run, not while the kernel is looked at
        (the long part at bank scale), so writers do not queue behind a pass. That is safe because every
        command commits to the store before it touches the kernel: if the revision moved while the pass
        looked, what it saw may be half a change, and it looks again instead of acting.

        A pass that programmed a waiting write (the fast lane) ends there: the look at everything else, and
        saving what the filters hold, come with the follow-up pass FOLLOW_UP later, so a write that comes
        right after does not queue behind them."""
        if not self._try_lock():
            return False
        started = time.perf_counter()
        fast_refused = False  # a table drifted: this pass repairs it before any write is programmed
        try:
            if self._write_waiting():
                if self._fast_lane():
                    self._follow_up = True
                    self.last_pass_seconds = time.perf_counter() - started
                    return True
                fast_refused = True
            self._save_files()  # under the lock: a command holding it reads and writes the same files
            desired = self.desired()
        finally:
            self._unlock()
        self._follow_up = False
        try:
            observed = self.observe(desired, give_way=not fast_refused)
        except _WriteWaiting:
            return False  # the loop programs the write at once, then looks again
        if self.host_errors.get("lab", "").startswith("the last pass"):
            del self.host_errors["lab"]  # this one got through
        actions = plan(desired, observed)
        if actions:
            if not self._try_lock():
                return False
            try:
                if self.runtime.store.revision != desired.revision:
                    return False  # a command changed the lab while the pass looked: look again
                for action in actions:
                    self._carry_out(action)
                self.executor.save_state()  # repairs change fingerprints even when no program changed
                filter_records.save(self.paths, self.memory.filters)
                observed = self._refingerprinted(observed)
            finally:
                self._unlock()
        self.observed = observed
        self.passes += 1
        self.last_pass_seconds = time.perf_counter() - started
        return True

    def _write_waiting(self) -> bool:
        return bool(self.waiters) and self.memory.programmed_revision < self.runtime.store.revision

    def _save_files(self) -> None:
        """What the filters hold (for a restarted controller), then their fingerprints: in that order, so a
        controller killed in between finds fingerprints it did not record and replaces those tables."""
        if self.executor.state_unsaved:
            self.executor.save_state()
            filter_records.save(self.paths, self.memory.filters)

    def _save_files_if_unlocked(self) -> None:
        """On the way out: a command holding the change lock may be programming the kernel itself, so the
        files are left as they are (a state not saved is no file: the next reader replaces whole tables)."""
        if self._try_lock():
            try:
                self._save_files()
            finally:
                self._unlock()

    def _try_lock(self) -> bool:
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(self) -> None:
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _fast_lane(self) -> bool:
        """A write waits: program its revision before the rest of the pass (reading the whole desired and
        observed state costs more than the change at bank scale), as Felix applies updates at once and
        leaves the rest to its resync. Only when every host's table still shows what the controller wrote:
        otherwise the pass repairs it first, and a diff never lands on a table that drifted."""
        for host in self.runtime.local_hosts():  # this machine's hosts (all of them on one machine)
            record = self.memory.filters.get(host)
            if record is None or self.reader.fingerprint(names.host_netns(self.runtime.lab, host)) != record.fingerprint:
                return False
        revision = self.runtime.store.revision
        self._carry_out(SyncPolicy(f"store revision {revision}, filters at {self.memory.programmed_revision} "
                                   "(a write waits)"))
        if self.observed is not None:
            self.observed = self._refingerprinted(self.observed)
        self.answer_waiters()
        return True

    def _carry_out(self, action: Any) -> None:
        started = time.perf_counter()
        what = type(action).__name__
        try:
            if isinstance(action, (SyncPolicy, ReprogramHost)):
                with self.world_lock, _collector_paused():  # readers see the world before or after, never halfway
                    host = self.executor.run(action)
            else:
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
    def host_in_sync(self, host: str, revision: int, observed: Observed | None = None) -> str | None:
        """None when the host's filter holds `revision` as the controller wrote it, else why not."""
        observed = observed or self.observed
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
        """Health as it is now: a fresh look (read only), not the last pass's, so a fault shows at once.
        Runs in the socket thread, with its own store connection and netlink sockets."""
        reads = self._read_side()
        desired = reads.desired(self.bgp)
        observed = self.observe(desired, reads.reader, follow_table=False)
        by_netns = {names.host_netns(self.runtime.lab, h): seen for h, seen in observed.hosts.items() if seen.exists}
        routes = {p.node: by_netns[p.netns].destinations if p.netns in by_netns  # a host's: read already
                  else reads.reader.route_destinations(p.netns) for p in desired.processes if p.kind == "speaker"}
        routes_missing = missing_routes(desired.announcements, routes)
        broken = broken_pods(desired, observed) if observed else {}
        hosts = {}
        degraded: list[str] = []
        for host in desired.hosts:
            speaker = self.memory.table.get(f"speaker {host}")
            seen = observed.processes.get(f"speaker {host}") if observed else None
            problem = self.host_in_sync(host, desired.revision, observed)
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
        for row in list(self.memory.table.values()):
            seen = observed.processes.get(row.name) if observed else None
            if seen is None or seen.pid is None:
                degraded.append(f"{row.name} is not running")
            elif not seen.helper_alive:
                degraded.append(f"{row.name}: route agent not running")
        degraded += [f"{node}: {len(p)} route(s) missing, e.g. {p[0]}" for node, p in sorted(routes_missing.items())]
        if broken:
            degraded.append(f"{len(broken)} pod(s) not plumbed, e.g. {next(iter(broken.values()))}")
        if observed and observed.services_configured and observed.services_pid is None:
            degraded.append("the services process (cluster DNS, egress gateways) is not running")
        responder = observed.processes.get("responder") if observed else None
        return {
            "ok": True, "lab": self.runtime.lab, "pid": os.getpid(), "revision": desired.revision,
            "programmed_revision": self.memory.programmed_revision, "resync_interval": self.resync,
            "passes": self.passes, "last_pass_ms": round(self.last_pass_seconds * 1000, 1),
            "responder": responder.pid if responder else None,
            "hosts": hosts, "processes": [row.as_dict() for row in list(self.memory.table.values())],
            "degraded": degraded, "last_repair": self.memory.last_repair.get("lab", ""),
            "memory_kib": _rss_kib(),
        }

    # requests (the socket thread) ---------------------------------------------------------------------
    def _read_side(self) -> _ReadSide:
        if self._reads is None:
            self._reads = _ReadSide(LabRuntime.open(self.runtime.lab), HostReader(self.runtime.spec.dataplane))
        return self._reads

    def handle(self, conn: socket.socket, request: dict[str, Any]) -> bool:
        """Answer a request; False when the answer comes later (a wait, answered by the loop)."""
        op = request.get("op")
        if op == "ping":
            _send(conn, {"ok": True, "pid": os.getpid(), "revision": self.memory.programmed_revision})
        elif op == "status":
            _send(conn, self.status_answer(request))
        elif op == "get":
            _send(conn, self.get_answer([str(k) for k in request.get("kinds", [])]))
        elif op == "show":  # a read command's whole output, drawn here for the caller's terminal
            from lab.controller.show import show

            _send(conn, show(self, request))
        elif op == "verdicts":
            _send(conn, self._verdicts(request))
        elif op == "check":
            _send(conn, self._check(request))
        elif op == "programs":
            from lab import warm

            with self.world_lock:
                dp = warm.dataplane_of(self.runtime.lab)
                programs = dict(dp.programs) if dp is not None else {}
                revision = self.memory.programmed_revision
            answer = {"ok": True, "revision": revision, "programs": program_digests(programs)}
            if request.get("text"):
                from policy_dataplane.dataplane.nft.render import render_full

                answer["text"] = {host: render_full(p) for host, p in programs.items()}
            _send(conn, answer)
        elif op == "resync":
            with self._passed:
                target = self.passes + 1
                self._resync_wanted = True
                self._wake.set()
                while self.passes < target and not self._stop:
                    self._passed.wait(1.0)
            _send(conn, {"ok": True, "passes": self.passes})
        elif op == "wait":
            revision = int(request.get("revision", 0))
            timeout = float(request.get("timeout", 60.0))
            with self._waiters_lock:
                self.waiters.append(Waiter(conn, revision, time.monotonic() + timeout))
            self._wake.set()
            return False
        else:
            _send(conn, {"ok": False, "error": f"unknown request {op!r}"})
        return True

    def status_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self.status()
        if request.get("lab_status"):  # what `lab status` prints besides health: from the same process
            answer["lab_status"] = self._read_side().lab_status()
            limit = request.get("pods_limit")
            if isinstance(limit, int):  # a table shows the first ones: 1500 pods are ~0.3 MB to send
                pods = answer["lab_status"]["pods"]
                answer["lab_status"].update(pods=pods[:limit], pods_total=len(pods))
        return answer

    def machines_health(self) -> dict[str, Any]:
        """The other machines' health as they last reported it to the shared store ({}: one machine)."""
        runtime = self._read_side().runtime
        if runtime.machine is None:
            return {}
        from lab.controller.machine_link import machines_health

        return machines_health(runtime.store, runtime.spec.machine_names(), runtime.machine)

    def get_answer(self, kinds: list[str]) -> dict[str, Any]:
        self.store_view = self.store_view.follow(self._read_side().runtime.store)
        return get_answer(self.store_view, kinds)

    def explain_verdict(self, request: dict[str, Any]) -> Any:
        """The trace on the enforced world, the message saying why there is none, or None before the first
        programming."""
        from lab import warm

        with self.world_lock:
            world = warm.world_of(self.runtime.lab)
            return None if world is None else explain_verdict(world, self.nodes, request)

    def _verdicts(self, request: dict[str, Any]) -> dict[str, Any]:
        """The oracle's verdicts for pairs (the matrix's expected column), on the warm world; refused (the
        caller builds the world from the store) while the store is ahead of what the filters hold."""
        from lab import warm
        from lab.traffic_hooks import verdicts

        runtime = self._read_side().runtime
        with self.world_lock:
            world = warm.world_of(self.runtime.lab)
            if world is None or self.memory.programmed_revision != runtime.store.revision:
                return {"ok": False, "error": "the controller has not programmed the store's revision yet"}
            pairs = [(str(s), str(d), str(kind), str(name)) for s, d, kind, name in request.get("pairs", [])]
            port = request.get("port")
            allowed = verdicts(world, runtime, pairs, str(request.get("protocol", "tcp")),
                               int(port) if port is not None else None)
        return {"ok": True, "revision": self.memory.programmed_revision, "allowed": allowed}

    def _check(self, request: dict[str, Any]) -> dict[str, Any]:
        """A write's whole-program check on a snapshot of the warm world (lab/controller/preflight.py), when
        the warm world is the store's revision the write started from; else the writer checks cold."""
        from lab import warm
        from lab.controller.preflight import finish_check, make_pages_writable_again, start_check

        with self.world_lock:  # no sync halfway in the snapshot; released while the child works
            state = warm.state_of(self.runtime.lab)
            if state is None or self.memory.programmed_revision != request.get("revision"):
                return {"ok": True, "warm": False}
            child = start_check(state, self.runtime, request)
        answer = finish_check(*child)
        make_pages_writable_again()  # the fork's page faults, taken before the write commits, not in its sync
        return answer

    def answer_waiters(self) -> None:
        now = time.monotonic()
        with self._waiters_lock:
            waiting = list(self.waiters)
        for waiter in waiting:
            problems = [p for h in self.runtime.local_hosts() if (p := self.host_in_sync(h, waiter.revision))]
            if self.memory.programmed_revision < waiter.revision and not problems:
                problems = [f"the controller has not reached revision {waiter.revision} yet"]
            if problems and now < waiter.deadline:
                continue
            answer = {"ok": True} if not problems else {"ok": False, "error": "; ".join(problems)}
            _send(waiter.conn, answer)
            waiter.conn.close()
            with self._waiters_lock:
                self.waiters.remove(waiter)

    # the loop ----------------------------------------------------------------------------------------
    def serve(self) -> None:
        server = listen(socket_file(self.paths))
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stop())
            signal.signal(signal.SIGINT, lambda *_: self.stop())
        events.record(self.paths, Event(time.time(), "start", "controller",
                                        f"pid {os.getpid()}, resync every {self.resync:g} s"))
        answering = threading.Thread(target=self._answer_requests, args=(server,), name="socket", daemon=True)
        answering.start()
        next_pass = 0.0
        watch = self._watch_store()
        try:
            while not self._stop:
                if time.monotonic() >= next_pass:
                    done = self._guarded_pass()
                    if self.passes == 1 and not self._frozen:
                        # the world built at start lives as long as the controller: out of the collector's
                        # sight, full collections stop walking it, and a write's check (a fork) shares more
                        gc.freeze()
                        self._frozen = True
                    self.answer_waiters()
                    with self._passed:
                        self._passed.notify_all()
                    self._publish_health()
                    interval = WAITING_PASS if self.waiters else FOLLOW_UP if self._follow_up else self.resync
                    next_pass = time.monotonic() + (interval if done else BUSY_RETRY)
                if self._wake.wait(max(0.0, next_pass - time.monotonic())):
                    self._wake.clear()
                    if self.waiters or self._resync_wanted:
                        self._resync_wanted = False
                        next_pass = 0.0  # a write is waiting, a resync was asked for, or the store moved
        finally:
            self._stop = True
            self._guarded(self._save_files_if_unlocked)
            answering.join(timeout=5.0)
            with self._waiters_lock:
                for waiter in self.waiters:
                    _send(waiter.conn, {"ok": False, "error": "the controller stopped"})
                    waiter.conn.close()
            server.close()
            if watch is not None:
                watch.close()
            socket_file(self.paths).unlink(missing_ok=True)
            events.record(self.paths, Event(time.time(), "stop", "controller", f"pid {os.getpid()} stopped"))
            self.reader.close()

    # several machines (lab/controller/machine_link.py) ------------------------------------------------
    def _watch_store(self) -> StoreWatch | None:
        """On a machine of a lab spanning machines, a change written elsewhere wakes the loop at once."""
        if self.runtime.machine is None:
            return None
        return StoreWatch(self.paths, self.runtime.store.revision, on_change=self._store_moved)

    def _store_moved(self) -> None:
        self._resync_wanted = True
        self._wake.set()

    def _publish_health(self) -> None:
        machine = self.runtime.machine
        if machine is None or time.monotonic() - self._published < PUBLISH_EVERY:
            return
        self._published = time.monotonic()
        try:
            publish_health(self.paths, machine, self.status())
        except Exception as exc:  # noqa: BLE001 (the report is best effort; the next one tries again)
            events.record(self.paths, Event(time.time(), "failed", "health report", f"{type(exc).__name__}: {exc}"))

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    def _answer_requests(self, server: socket.socket) -> None:
        """The socket thread: one request at a time, while the loop may be in the middle of a pass."""
        server.settimeout(ACCEPT_POLL)
        try:
            while not self._stop:
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return  # the server socket was closed
                try:
                    self._serve_one(conn)
                except Exception as exc:  # noqa: BLE001 - a failed answer must not end the socket thread
                    events.record(self.paths, Event(time.time(), "failed", "request",
                                                    f"{type(exc).__name__}: {exc}"))
                    _send(conn, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                    conn.close()
        finally:
            if self._reads is not None:  # closed by the thread that made it (SQLite wants that)
                self._reads.close()

    def _guarded(self, step: Any) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - stopping goes on; the next controller replaces those tables
            events.record(self.paths, Event(time.time(), "failed", "save", f"{type(exc).__name__}: {exc}"))

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
        conn.setblocking(True)
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


@dataclass
class _ReadSide:
    """What the socket thread reads with: its own store connection (SQLite connections stay in the thread
    that made them) and its own netlink sockets."""

    runtime: LabRuntime
    reader: HostReader
    _desired: Desired | None = None

    _lab_status: tuple[tuple[int, Any], dict[str, Any]] | None = None

    def desired(self, bgp: Any) -> Desired:
        if self._desired is None or self._desired.revision != self.runtime.store.revision:
            self._desired = read_desired(self.runtime, bgp)
        return self._desired

    def lab_status(self) -> dict[str, Any]:
        """Hosts, pods, addresses and blocks: all from the store, so the same until it changes."""
        from lab.status import lab_status

        version = (self.runtime.store.revision, self.runtime.store.get_meta("status"))  # up, ... : no revision
        if self._lab_status is None or self._lab_status[0] != version:
            self._lab_status = (version, lab_status(self.runtime))
        return dict(self._lab_status[1])  # the caller replaces top-level keys only (a deep copy: ~15 ms)

    def close(self) -> None:
        self.reader.close()
        self.runtime.close()


def pod_shape(doc: dict[str, Any]) -> str:
    """A pod's document without its labels, as comparable text."""
    metadata = {k: v for k, v in (doc.get("metadata") or {}).items() if k != "labels"}
    return json.dumps({**doc, "metadata": metadata}, sort_keys=True)


def _node_addresses(runtime: LabRuntime) -> dict[str, str]:
    from lab.targets import node_addresses

    return node_addresses(runtime)


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


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A sync allocates thousands of short-lived containers (a new policy's selector over 1500 pods), and the
    cyclic collector ran several times inside it: ~15% of the sync at bank scale. It runs after the kernel
    has the change instead."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
