"""The iptables + ipset backend: Calico's classic dataplane, the baseline nftables is compared with."""

from __future__ import annotations

from collections.abc import Mapping

from policy_dataplane.dataplane.counters import Counters, TableInfo, describe_program
from policy_dataplane.dataplane.hostprogram import HostProgram
from policy_dataplane.dataplane.iptables.counters import read_counters
from policy_dataplane.dataplane.iptables.iptables_filter import IptablesHostFilter
from policy_dataplane.dataplane.iptables.render import (
    check_set_sizes,
    render_ipset_full,
    render_iptables_full,
)


class IptablesBackend:
    name = "iptables"

    def host_filter(self, netns: str) -> IptablesHostFilter:
        return IptablesHostFilter(netns)

    def check(self, program: HostProgram) -> None:
        program.check()
        check_set_sizes(program)
        render_ipset_full(program)
        render_iptables_full(program)

    def counters(self, host_netns: Mapping[str, str]) -> Counters:
        return read_counters(host_netns)

    def describe(self, host: str, netns: str, program: HostProgram | None) -> TableInfo:
        # the rules carry no names iptables can list back, but they log with the program's prefixes
        return describe_program(host, program) if program is not None else TableInfo(host)


__all__ = ["IptablesBackend"]
