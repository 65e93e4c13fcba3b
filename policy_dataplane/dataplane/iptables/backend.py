"""The iptables + ipset backend: Calico's classic dataplane, the baseline nftables is compared with."""

from __future__ import annotations

from collections.abc import Mapping

from policy_dataplane.dataplane.counters import Counters, TableInfo, counters_from, describe_program
from policy_dataplane.dataplane.hostprogram import HostProgram
from policy_dataplane.dataplane.iptables.iptables_filter import IptablesHostFilter


class IptablesBackend:
    name = "iptables"

    def host_filter(self, netns: str) -> IptablesHostFilter:
        return IptablesHostFilter(netns)

    def counters(self, host_netns: Mapping[str, str]) -> Counters:
        # iptables rule counters are not read back yet: every host reports none
        return counters_from(TableInfo(host) for host in host_netns)

    def describe(self, host: str, netns: str, program: HostProgram | None) -> TableInfo:
        # the rules carry no names iptables can list back, but they log with the program's prefixes
        return describe_program(host, program) if program is not None else TableInfo(host)


__all__ = ["IptablesBackend"]
