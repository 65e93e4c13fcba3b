"""The fake backend: host filters whose "kernel" is a dict, with the same contract as nftables.

`FakeKernel` plays the kernel every process shares: the program each namespace holds and every change it
accepted. Like nft, a diff is only accepted against the program the kernel really holds (a filter that
took over a saved state after a host restarted gets refused, and falls back to a full replace when its
`fallback_full` says so), a refused change leaves the kernel as it was, and `refuse_next(netns)` makes the
next change of a namespace fail, as a kernel tool exiting non-zero would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from policy_dataplane.dataplane.backend import ApplyRefused, ApplyResult
from policy_dataplane.dataplane.counters import Counters, TableInfo, counters_from, describe_program
from policy_dataplane.dataplane.hostprogram import EMPTY_PROGRAM, HostProgram


@dataclass(frozen=True)
class Change:
    netns: str
    mode: str  # "diff" or "full"
    program: HostProgram


@dataclass
class FakeKernel:
    tables: dict[str, HostProgram] = field(default_factory=dict)  # netns -> the program it enforces
    changes: list[Change] = field(default_factory=list)
    refusing: set[str] = field(default_factory=set)

    def refuse_next(self, netns: str) -> None:
        self.refusing.add(netns)

    def reset(self) -> None:
        self.tables.clear()
        self.changes.clear()
        self.refusing.clear()


KERNEL = FakeKernel()  # what the registered "fake" backend programs (one kernel per process, like the real one)


def changed_entries(old: HostProgram, new: HostProgram) -> int:
    """Sets, policy chains and endpoints that differ: the size of a diff."""
    total = 0
    for a, b in ((old.address_sets, new.address_sets), (old.named_port_sets, new.named_port_sets),
                 (old.policies, new.policies), (old.endpoints, new.endpoints)):
        total += sum(1 for key in a.keys() | b.keys() if a.get(key) != b.get(key))  # type: ignore[attr-defined]
    return total


class FakeHostFilter:
    def __init__(self, netns: str, kernel: FakeKernel) -> None:
        self.netns = netns
        self.kernel = kernel
        self.applied: HostProgram | None = None
        self.fallback_full = False

    def install_base(self) -> ApplyResult:
        return self.resync(EMPTY_PROGRAM)

    def start(self, new: HostProgram) -> _FakePending:
        if new is self.applied:
            return _FakePending(self, new, "none", 0)
        new.check()
        if self.applied is None:
            return self._start(new, "full")
        if self.kernel.tables.get(self.netns) != self.applied:  # the kernel lost or changed it (a restart)
            if not self.fallback_full:
                raise ApplyRefused(f"{self.netns}: the kernel does not hold the program the diff starts from")
            return self._start(new, "full")
        size = changed_entries(self.applied, new)
        return self._start(new, "diff", size) if size else _FakePending(self, new, "none", 0)

    def _start(self, new: HostProgram, mode: str, size: int | None = None) -> _FakePending:
        if self.netns in self.kernel.refusing:
            self.kernel.refusing.discard(self.netns)
            raise ApplyRefused(f"{self.netns}: change refused")
        return _FakePending(self, new, mode, changed_entries(EMPTY_PROGRAM, new) if size is None else size)

    def apply(self, new: HostProgram) -> ApplyResult:
        return self.start(new).wait()

    def resync(self, new: HostProgram) -> ApplyResult:
        new.check()
        return self._start(new, "full").wait()

    def remove(self) -> None:
        self.kernel.tables.pop(self.netns, None)
        self.applied = None

    def close(self) -> None:
        pass


@dataclass
class _FakePending:
    host: FakeHostFilter
    new: HostProgram
    mode: str
    commands: int

    def wait(self) -> ApplyResult:
        if self.mode != "none":
            self.host.kernel.tables[self.host.netns] = self.new
            self.host.kernel.changes.append(Change(self.host.netns, self.mode, self.new))
        self.host.applied = self.new
        self.host.fallback_full = False
        return ApplyResult(self.host.netns, self.mode, self.commands, 0.0)


class FakeBackend:
    name = "fake"

    def __init__(self, kernel: FakeKernel | None = None, max_set_elements: int | None = None) -> None:
        self.kernel = KERNEL if kernel is None else kernel
        self.max_set_elements = max_set_elements  # a kernel limit to play (ipset's maxelem), None: none

    def host_filter(self, netns: str) -> FakeHostFilter:
        return FakeHostFilter(netns, self.kernel)

    def check(self, program: HostProgram) -> None:
        program.check()  # no text is rendered: only the program's consistency and the set limit refuse it
        for name, members in program.address_sets.items():
            if self.max_set_elements is not None and len(members) > self.max_set_elements:
                raise ValueError(f"set {name} would hold {len(members)} entries, more than {self.max_set_elements}")

    def counters(self, host_netns: Mapping[str, str]) -> Counters:
        return counters_from(TableInfo(host) for host in host_netns)  # no packets pass a dict

    def describe(self, host: str, netns: str, program: HostProgram | None) -> TableInfo:
        held = self.kernel.tables.get(netns)
        return describe_program(host, held) if held is not None else TableInfo(host)


__all__ = ["KERNEL", "Change", "FakeBackend", "FakeHostFilter", "FakeKernel", "changed_entries"]
