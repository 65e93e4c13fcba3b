"""The observed state of a lab: its namespaces, pod links and routes, processes, filter fingerprints.

Cheap enough to run every second at bank scale: one directory listing for the namespaces, one link and one
route dump per host (netlink sockets opened once inside each host namespace and kept), pid files checked
against /proc, and the nftables generation id per host (one netlink request, ~0.4 ms). The iptables
baseline has no generation id: a hash of `iptables-save` (counters left out) stands in.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Mapping

from pyroute2 import IPRoute
from pyroute2.netlink import NLM_F_REQUEST
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETGEN, NFTSocket, nft_gen_msg

from bgp import bird, speaker
from bgp.files import SpeakerFiles, read_json
from lab.controller.state import HostSeen, ProcessSeen, ProcessWant
from policy_dataplane.dataplane.netns_exec import CommandFailed, run_in_netns
from topology import names, netns, processes, responder_ctl

_COUNTERS = re.compile(r"\[\d+:\d+\]")


def nft_generation(host_netns: str) -> str | None:
    """The namespace's nftables ruleset generation: it goes up by one with every committed change."""
    try:
        with netns.entered(host_netns):
            sock = NFTSocket()
    except netns.NetnsError:
        return None
    try:
        for msg in sock.request_get(nft_gen_msg(), NFT_MSG_GETGEN, NLM_F_REQUEST):
            return str(msg.get_attr("NFTA_GEN_ID"))
        return None
    finally:
        sock.close()


def iptables_hash(host_netns: str) -> str | None:
    try:
        text = run_in_netns(host_netns, ["iptables-legacy-save", "-t", "filter"])
        sets = run_in_netns(host_netns, ["ipset", "save"])
    except (CommandFailed, OSError):
        return None
    lines = [_COUNTERS.sub("", line) for line in (text + sets).splitlines() if not line.startswith("#")]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


class HostReader:
    """Keeps one rtnetlink socket per host namespace (hosts are never recreated, pods come and go)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._sockets: dict[str, IPRoute] = {}

    def fingerprint(self, host_netns: str) -> str | None:
        return nft_generation(host_netns) if self.backend == "nftables" else iptables_hash(host_netns)

    def read(self, host_netns: str) -> HostSeen:
        if not netns.exists(host_netns):
            self._drop(host_netns)
            return HostSeen(False, None)
        ipr = self._socket(host_netns)
        links, routes = set(), set()
        up = {}
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name and name.startswith(names.HOST_VETH_PREFIX):
                up[link["index"]] = name
                if link.get_attr("IFLA_OPERSTATE") == "UP":
                    links.add(name)
        for route in ipr.get_routes(family=socket.AF_INET, table=254):
            if route["dst_len"] == 32 and route.get_attr("RTA_OIF") in up:
                routes.add(f"{route.get_attr('RTA_DST')}/32")
        return HostSeen(True, self.fingerprint(host_netns), frozenset(links), frozenset(routes))

    def _socket(self, host_netns: str) -> IPRoute:
        if host_netns not in self._sockets:
            with netns.entered(host_netns):
                self._sockets[host_netns] = IPRoute()
        return self._sockets[host_netns]

    def _drop(self, host_netns: str) -> None:
        sock = self._sockets.pop(host_netns, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for host_netns in list(self._sockets):
            self._drop(host_netns)


def pod_namespaces(lab: str) -> frozenset[str]:
    return frozenset(netns.list_netns(f"{names.lab_netns_prefix(lab)}p-"))


def process_seen(paths: names.LabPaths, want: ProcessWant) -> ProcessSeen:
    if want.kind == "speaker":
        pid = speaker.speaker_pid(paths, want.node)
        return ProcessSeen(pid, speaker.agent_pid(paths, want.node) is not None, _argv(pid))
    if want.kind == "reflector":
        pid = bird.reflector_pid(paths, want.node)
    else:
        pid = responder_ctl.running_pid(paths)
    return ProcessSeen(pid, True, _argv(pid))


def _argv(pid: int | None) -> tuple[str, ...]:
    return tuple(processes.argv(pid)) if pid is not None else ()


def announced(paths: names.LabPaths, nodes: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """What each speaker's announcement file holds (absent: no entry)."""
    out = {}
    for node in nodes:
        data = read_json(SpeakerFiles.of(paths, node).announcements)
        if isinstance(data, dict) and isinstance(data.get("prefixes"), list):
            out[node] = tuple(str(p) for p in data["prefixes"])
    return out


def responder_targets(paths: names.LabPaths) -> frozenset[str] | None:
    try:
        pods = responder_ctl.read_responder_pods(names.responder_pods_file(paths))
    except (OSError, ValueError):
        return None
    return frozenset(t.netns for t in pods.targets)
