"""Applies HostPrograms as iptables (legacy, Calico's classic) + ipsets in a host namespace: the baseline.

A `backend.HostFilter` like the nftables one (install_base / plan / start / apply / resync / remove), so the
Dataplane facade and the benchmark drive both. One change runs `ipset restore` (new sets, element changes),
then `iptables-restore --noflush` with only the changed chains, then destroys sets no longer used: three
steps, not one transaction (as with Felix). A full sync rewrites the whole filter table in one restore. A diff
made from a saved state that the kernel refuses (another process changed it since) falls back to a full sync.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from policy_dataplane.dataplane import conntrack
from policy_dataplane.dataplane.backend import ApplyResult
from policy_dataplane.dataplane.hostprogram import EMPTY_PROGRAM, HostProgram
from policy_dataplane.dataplane.iptables.render import (
    removed_ipsets,
    render_ipset_diff,
    render_ipset_full,
    render_iptables_diff,
    render_iptables_full,
)
from policy_dataplane.dataplane.iptables.render_node import BUILTIN, needs_full_restore
from topology.engine import Engine
from topology.engines import get_engine
from topology.netns import CommandFailed, finish

IPTABLES_RESTORE = "iptables-legacy-restore"
IPTABLES = "iptables-legacy"


@dataclass(frozen=True)
class IptablesPlan:
    mode: str  # none, diff, full
    ipsets: str = ""
    rules: str = ""
    destroy: tuple[str, ...] = ()

    @property
    def commands(self) -> int:
        return self.ipsets.count("\n") + self.rules.count("\n") + len(self.destroy)


class IptablesHostFilter:
    def __init__(self, netns: str, engine: Engine | None = None) -> None:
        self.netns = netns
        self.engine = engine or get_engine()
        self.applied: HostProgram | None = None
        self.fallback_full = False

    def install_base(self) -> ApplyResult:
        result = self.resync(EMPTY_PROGRAM)
        conntrack.tune(self.engine, self.netns)
        return result

    def plan(self, new: HostProgram) -> IptablesPlan:
        if new is self.applied:
            return IptablesPlan("none")
        new.check()
        if self.applied is None or needs_full_restore(self.applied, new):
            return IptablesPlan("full", render_ipset_full(new), render_iptables_full(new), tuple(self._stale_sets(new)))
        ipsets, rules = render_ipset_diff(self.applied, new), render_iptables_diff(self.applied, new)
        destroy = tuple(removed_ipsets(self.applied, new))
        return IptablesPlan("diff", ipsets, rules, destroy) if ipsets or rules or destroy else IptablesPlan("none")

    def _stale_sets(self, new: HostProgram) -> list[str]:
        """On a full sync: our ipsets that exist in the kernel but not in the program."""
        listed = self.engine.run_in(self.netns, ["ipset", "list", "-n"], check=False).split()
        wanted = set(render_ipset_full(new).split())
        return [name for name in listed if name.startswith("npl-") and name not in wanted]

    def apply(self, new: HostProgram) -> ApplyResult:
        return self.start(new).wait()

    def resync(self, new: HostProgram) -> ApplyResult:
        self.applied = None
        return self.apply(new)

    def start(self, new: HostProgram) -> "_IptablesPending":
        plan = self.plan(new)
        try:
            return self._start(new, plan)
        except CommandFailed:
            if not (self.fallback_full and plan.mode == "diff"):
                raise
            self.applied = None  # the saved state was not what the kernel holds: replace everything
            return self._start(new, self.plan(new))

    def _start(self, new: HostProgram, plan: IptablesPlan) -> "_IptablesPending":
        started = time.perf_counter()
        if plan.ipsets:
            self.engine.run_in(self.netns, ["ipset", "restore"], stdin=plan.ipsets)
        proc = None
        if plan.rules:
            argv = [IPTABLES_RESTORE] + (["--noflush"] if plan.mode == "diff" else [])
            proc = self.engine.start_in(self.netns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return _IptablesPending(self, new, plan, proc, started)

    def remove(self) -> None:
        self.applied = None
        empty = "".join(f"*{table}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in chains) + "COMMIT\n"
                        for table, chains in BUILTIN.items())
        self.engine.run_in(self.netns, [IPTABLES_RESTORE], stdin=empty, check=False)
        for name in self.engine.run_in(self.netns, ["ipset", "list", "-n"], check=False).split():
            if name.startswith("npl-"):
                self.engine.run_in(self.netns, ["ipset", "destroy", name], check=False)

    def close(self) -> None:
        pass


@dataclass
class _IptablesPending:
    host: IptablesHostFilter
    new: HostProgram
    plan: IptablesPlan
    proc: subprocess.Popen[str] | None
    started: float

    def wait(self) -> ApplyResult:
        try:
            self._finish()
        except CommandFailed:
            if not (self.host.fallback_full and self.plan.mode == "diff"):
                raise
            # the diff was made against a saved state the kernel no longer held (its steps are not one
            # transaction, so part of it may have landed): a full replace is right whatever the kernel holds
            self.host.applied = None
            return self.host.apply(self.new)
        self.host.applied = self.new
        self.host.fallback_full = False
        return ApplyResult(self.host.netns, self.plan.mode, self.plan.commands, time.perf_counter() - self.started)

    def _finish(self) -> None:
        if self.proc is not None:
            argv = [IPTABLES_RESTORE] + (["--noflush"] if self.plan.mode == "diff" else [])
            finish(self.host.netns, argv, self.proc, self.plan.rules)
        if self.plan.destroy:
            script = "".join(f"destroy {name}\n" for name in self.plan.destroy)
            self.host.engine.run_in(self.host.netns, ["ipset", "restore"], stdin=script)


__all__ = ["IptablesHostFilter", "IptablesPlan"]
