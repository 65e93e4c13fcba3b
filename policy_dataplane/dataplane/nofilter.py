"""The `none` dataplane: no filter at all, the physical floor a benchmark compares the filters against.

A `backend.HostFilter` like the others (install_base / start / apply / resync / remove / close), so the
Dataplane facade drives it like them, but nothing reaches the kernel: every pod reaches every other,
whatever the policy says. Only for measuring what filtering costs; never a way to run a lab for real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from policy_dataplane.dataplane.backend import ApplyResult
from policy_dataplane.dataplane.counters import Counters, TableInfo, counters_from
from policy_dataplane.dataplane.hostprogram import EMPTY_PROGRAM, HostProgram


class NoFilter:
    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.applied: HostProgram | None = None
        self.fallback_full = False  # accepted for the facade's load_state

    def install_base(self) -> ApplyResult:
        return self.resync(EMPTY_PROGRAM)

    def apply(self, new: HostProgram) -> ApplyResult:
        return self.start(new).wait()

    def resync(self, new: HostProgram) -> ApplyResult:
        self.applied = None
        return self.apply(new)

    def start(self, new: HostProgram) -> "_Done":
        new.check()  # the program is still compiled and checked: only the kernel step is left out
        return _Done(self, new)

    def remove(self) -> None:
        self.applied = None

    def close(self) -> None:
        pass


@dataclass
class _Done:
    host: NoFilter
    new: HostProgram

    def wait(self) -> ApplyResult:
        self.host.applied = self.new
        return ApplyResult(self.host.netns, "none", 0, 0.0)


class NoFilterBackend:
    name = "none"

    def host_filter(self, netns: str) -> NoFilter:
        return NoFilter(netns)

    def check(self, program: HostProgram) -> None:
        program.check()  # no text is rendered: only the program's own consistency can refuse it

    def counters(self, host_netns: Mapping[str, str]) -> Counters:
        return counters_from(TableInfo(host) for host in host_netns)  # nothing counts

    def describe(self, host: str, netns: str, program: HostProgram | None) -> TableInfo:
        return TableInfo(host)  # nothing drops or logs


__all__ = ["NoFilter", "NoFilterBackend"]
