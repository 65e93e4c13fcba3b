"""After a change of the store: bring the kernel in line with it, the hosts' filters first (`lab.warm`),
then what Services need (`lab.services`: DNAT, DNS records, gateways, resolv.conf)."""

from __future__ import annotations

from lab import services, warm
from lab.runtime import LabRuntime
from policy_dataplane.dataplane.lab_dataplane import SyncReport


def sync(runtime: LabRuntime) -> SyncReport:
    report = warm.sync(runtime)
    services.sync(runtime)
    return report


__all__ = ["sync"]
