"""The dataplane of one lab, as the CLI uses it: compile the world per host and program every host.

    dp = Dataplane("demo")                      # a registered backend: "nftables" (default), "iptables", "none"
    dp.install_base("h1")                       # before any pod exists on h1: fail closed from the start
    dp.sync(world, {"h1": [(("ns", "pod"), "cali0123456789a")], ...})   # diff per host, all hosts at once
    dp.resync(world, placement)                 # after a restart: full atomic replace, flows survive
    dp.save_state(path) / dp.load_state(path)   # a CLI run per command: diff against what was applied
    dp.counters(hosts) / dp.drops(hosts, world) # see counters.py / drops.py

`sync` compiles every host of the placement (pure, from the world), then sends each changed host one
transaction; unchanged hosts cost nothing. It returns per-host results with timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from policy_dataplane.dataplane import program_state
from policy_dataplane.dataplane.backend import ApplyResult, Backend, HostFilter, apply_hosts
from policy_dataplane.dataplane.backends import get_backend
from policy_dataplane.dataplane.compile import IncrementalCompiler, PodKey
from policy_dataplane.dataplane.counters import Counters, TableInfo
from policy_dataplane.dataplane.drops import DropWatcher
from policy_dataplane.dataplane.hostprogram import HostProgram
from policy_dataplane.policy.world import World
from topology import names

# host -> [(pod key, host-side ifname)], or {pod key: ifname} (cheaper to take again and again: a warm caller's)
PodsByHost = Mapping[str, Sequence[tuple[PodKey, str]] | Mapping[PodKey, str]]


@dataclass(frozen=True)
class SyncReport:
    compile_seconds: float
    program_seconds: float
    hosts: dict[str, ApplyResult]

    @property
    def changed_hosts(self) -> list[str]:
        return [h for h, r in self.hosts.items() if r.mode != "none"]


class Dataplane:
    def __init__(self, lab: str, backend: str | Backend = "nftables",
                 host_netns: Callable[[str], str] | None = None) -> None:
        """`backend`: a registered name, or a Backend itself (a test's own fake kernel)."""
        self.driver = get_backend(backend) if isinstance(backend, str) else backend
        self.lab = lab
        self.backend = self.driver.name
        self._netns = host_netns or (lambda host: names.host_netns(lab, host))
        self._hosts: dict[str, HostFilter] = {}
        self.programs: dict[str, HostProgram] = {}  # last compiled, per host
        self._compiler = IncrementalCompiler()
        self._saved_json: dict[str, tuple[HostProgram, str]] = {}  # per host: the program last saved, as text

    def host(self, host: str) -> HostFilter:
        if host not in self._hosts:
            self._hosts[host] = self.driver.host_filter(self._netns(host))
        return self._hosts[host]

    def install_base(self, host: str) -> ApplyResult:
        return self.host(host).install_base()

    def compile(self, world: World, placement: PodsByHost) -> dict[str, HostProgram]:
        """Programs per host; incremental: only hosts and sets a pod change can touch are recompiled."""
        return self._compiler.compile(world, _as_dicts(placement))

    def last_recompiled(self) -> set[str]:
        """The hosts whose program the last `compile` changed."""
        return set(self._compiler.last_recompiled)

    def sync(self, world: World, placement: PodsByHost) -> SyncReport:
        started = time.perf_counter()
        programs = self._compiler.compile(world, _as_dicts(placement), settle=False)
        compiled = time.perf_counter()
        try:
            results = apply_hosts({self.host(h): p for h, p in programs.items()})
        finally:
            self._compiler.settle()  # the compiler's bookkeeping, once the kernel has the change
        self.programs.update(programs)
        by_netns = {r.netns: r for r in results}
        return SyncReport(compiled - started, time.perf_counter() - compiled,
                          {h: by_netns[self.host(h).netns] for h in programs})

    def save_state(self, path: Path) -> None:
        """Remember what every host has applied, for the next process (a CLI that runs once per command):
        its first sync then sends a diff instead of replacing whole tables (which also resets counters)."""
        applied = {h: f.applied for h, f in self._hosts.items() if f.applied is not None}
        cached = self._saved_json
        self._saved_json = {h: cached[h] if h in cached and cached[h][0] is p else (p, program_state.program_json(p))
                            for h, p in applied.items()}  # programs are immutable: the same object, the same text
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(program_state.assemble(self.backend, {h: text for h, (_, text) in self._saved_json.items()}))
        tmp.replace(path)

    def load_state(self, path: Path) -> bool:
        """Take over what a previous process applied (see save_state). If the kernel no longer matches it
        (a host restarted), the first diff fails atomically and that host falls back to a full replace.
        False when there is no state; StateError (saying to rebuild the lab) when the file is not one."""
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return False
        backend, applied = program_state.loads(text, str(path))
        if backend != self.backend:
            return False
        for host, program in applied.items():
            f = self.host(host)
            f.applied = program
            f.fallback_full = True
        return True

    def resync(self, world: World, placement: PodsByHost) -> SyncReport:
        """Forget what was applied and replace every host's table in one transaction each."""
        for host in placement:
            self.host(host).applied = None
        return self.sync(world, placement)

    def remove(self, host: str) -> None:
        self.host(host).remove()
        self.programs.pop(host, None)

    def forget(self, host: str) -> None:
        """Stop keeping a host whose namespace is gone (its filter went with it): the next save leaves it out."""
        f = self._hosts.pop(host, None)
        if f is not None:
            f.close()
        self.programs.pop(host, None)

    def netns(self, host: str) -> str:
        return self._netns(host)

    def close(self) -> None:
        """Close the netlink sockets kept per host (the kernel state stays as applied)."""
        for f in self._hosts.values():
            f.close()

    def counters(self, hosts: Sequence[str]) -> Counters:
        """Packets and bytes per policy, rule and endpoint on these hosts (read from the kernel: works from a
        fresh process)."""
        return self.driver.counters({h: self._netns(h) for h in hosts})

    def drops(self, hosts: Sequence[str], world: World | None = None) -> DropWatcher:
        """A watcher of denied (and logged) packets on these hosts; pod names come from the world's pods.
        Use as a context manager: `poll(timeout)` or `follow()`. Policy names come from the backend (from the
        programs this Dataplane last synced when the kernel cannot name them)."""
        by_ip = {ip: str(pod) for pod in world.pods.values() for ip in pod.ips} if world else {}
        by_ip.update({node.ip: node.name for node in world.nodes.values()} if world else {})

        def describe(host: str) -> TableInfo:
            return self.driver.describe(host, self._netns(host), self.programs.get(host))

        return DropWatcher({h: self._netns(h) for h in hosts}, describe, by_ip.get)


def _as_dicts(placement: PodsByHost) -> dict[str, dict[PodKey, str]]:
    return {host: pods if isinstance(pods, dict) else dict(pods) for host, pods in placement.items()}


__all__ = ["Dataplane", "PodsByHost", "SyncReport"]
