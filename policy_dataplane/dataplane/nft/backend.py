"""The nftables backend (the lab's default): one `inet` table per host namespace, read back with `nft -j`."""

from __future__ import annotations

from collections.abc import Mapping

from policy_dataplane.dataplane.counters import Counters, TableInfo
from policy_dataplane.dataplane.hostprogram import HostProgram
from policy_dataplane.dataplane.nft.counters import describe_table, read_counters, read_table
from policy_dataplane.dataplane.nft.nft_filter import NftablesHostFilter
from policy_dataplane.dataplane.nft.render import render_full


class NftablesBackend:
    name = "nftables"

    def host_filter(self, netns: str) -> NftablesHostFilter:
        return NftablesHostFilter(netns)

    def check(self, program: HostProgram) -> None:
        program.check()
        render_full(program)

    def counters(self, host_netns: Mapping[str, str]) -> Counters:
        return read_counters(host_netns)

    def describe(self, host: str, netns: str, program: HostProgram | None) -> TableInfo:
        # the table names itself (comments), so a fresh process needs no program
        return describe_table(host, read_table(netns))


__all__ = ["NftablesBackend"]
