"""The `none` dataplane: no filter at all, the physical floor a benchmark compares the filters against.

Same interface as nft.nft_filter.HostFilter (install_base / plan / start / apply / resync / remove / close), so the
Dataplane facade drives it like the others, but nothing reaches the kernel: every pod reaches every other,
whatever the policy says. Only for measuring what filtering costs; never a way to run a lab for real.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy_dataplane.dataplane.hostprogram import EMPTY_PROGRAM, HostProgram
from policy_dataplane.dataplane.nft.nft_filter import ApplyResult


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


__all__ = ["NoFilter"]
