"""The dataplane seam: what a backend must do (the registry that finds one by name is `backends.py`).

A backend puts `HostProgram`s into one host namespace each (`HostFilter`), reads its counters back and
names what its log prefixes point at (for drops). The lab's `Dataplane` facade, the CLI and the benchmarks
only ever see these protocols, so a new backend is one folder (its filter, its counters, its describe)
plus one `register_backend` line in `dataplane/backends.py`; no caller changes.

    backend = backends.get_backend("nftables")
    f = backend.host_filter("nla-demo-h-node1")
    f.install_base(); f.apply(program); f.resync(program); f.remove()
    backend.check(program)                      # render only: raises what the kernel would be refused
    backend.counters({"node1": "nla-demo-h-node1"})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from policy_dataplane.dataplane.counters import Counters, TableInfo
from policy_dataplane.dataplane.hostprogram import HostProgram
from topology.netns import CommandFailed


@dataclass(frozen=True)
class ApplyResult:
    netns: str
    mode: str  # "none" (no change), "elements" (netlink), "diff", "full"
    commands: int  # lines of the transaction
    seconds: float


class ApplyRefused(RuntimeError):
    """The kernel refused a host's change as a whole: that host keeps what it had."""


# What a host filter raises when a change is refused (a kernel tool exiting non-zero counts too).
REFUSED = (ApplyRefused, CommandFailed)


class PendingApply(Protocol):
    """A change started on one host; `wait` finishes it (hosts are started all at once, then waited for)."""

    def wait(self) -> ApplyResult: ...


class HostFilter(Protocol):
    """The lab's filter in one host namespace. `applied` is the program the kernel holds (None: unknown, the
    next apply replaces everything). `fallback_full`: `applied` came from a saved state, so a diff the kernel
    refuses falls back to a full replace instead of failing."""

    netns: str
    applied: HostProgram | None
    fallback_full: bool

    def install_base(self) -> ApplyResult:
        """The empty program (fail closed for any pod interface) before any pod exists."""
        ...

    def start(self, new: HostProgram) -> PendingApply:
        """Begin patching the kernel from `applied` to `new` (nothing changes if it fails)."""
        ...

    def apply(self, new: HostProgram) -> ApplyResult: ...

    def resync(self, new: HostProgram) -> ApplyResult:
        """Replace everything with `new`, whatever the kernel holds (established flows survive)."""
        ...

    def remove(self) -> None:
        """Take the lab's filter out of the namespace (the namespace stays)."""
        ...

    def close(self) -> None:
        """Release what the filter keeps open (sockets); the kernel state stays."""
        ...


class Backend(Protocol):
    name: str

    def host_filter(self, netns: str) -> HostFilter: ...

    def check(self, program: HostProgram) -> None:
        """Raise (UnsafeText, ValueError) if this backend could not give `program` to a host: render it as
        `apply` would, touching no kernel. The apply-time preflight refuses a change with it before the store
        takes it."""
        ...

    def counters(self, host_netns: Mapping[str, str]) -> Counters:
        """Packets and bytes per policy, rule and endpoint on these hosts (host -> namespace)."""
        ...

    def describe(self, host: str, netns: str, program: HostProgram | None) -> TableInfo:
        """The names behind a host's chains (for drop events); `program`: what this process last synced."""
        ...


def apply_hosts(changes: Mapping[HostFilter, HostProgram]) -> list[ApplyResult]:
    """Apply each host's program, all hosts at once. A host whose change is refused keeps its old program;
    the others are applied; the first refusal is raised after all have finished."""
    pending, failures = [], []
    for host, program in changes.items():
        try:
            pending.append(host.start(program))
        except REFUSED as error:
            failures.append(error)
    results = []
    for p in pending:
        try:
            results.append(p.wait())
        except REFUSED as error:
            failures.append(error)
    if failures:
        raise failures[0]
    return results


__all__ = ["REFUSED", "ApplyRefused", "ApplyResult", "Backend", "HostFilter", "PendingApply", "apply_hosts"]
