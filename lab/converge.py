"""After a change of the store: bring the kernel in line with it, the hosts' filters first (`lab.warm`),
then what Services need (`lab.services`: DNAT, DNS records, gateways, resolv.conf). When the lab's
controller runs, it does both (one writer per ruleset) and this only waits for it."""

from __future__ import annotations

from lab import services, warm
from lab.controller.launcher import running_pid
from lab.runtime import LabRuntime
from policy_dataplane.dataplane.lab_dataplane import SyncReport


def sync(runtime: LabRuntime) -> SyncReport | None:
    """When the lab's controller runs, it is the only writer of the filters and the Services: the change is
    left to it, and `runtime.exclusive()` waits until it has programmed this revision (None)."""
    if running_pid(runtime.paths) is not None:
        runtime.await_revision(runtime.store.revision)
        return None
    report = warm.sync(runtime)
    services.sync(runtime)
    return report


__all__ = ["sync"]
