"""The observed state of a lab: its namespaces, pod links and routes, processes, filter fingerprints.

Cheap enough to run every second at bank scale: one directory listing for the namespaces, one link and one
route dump per host (the lab's own rtnetlink parser, ~50x faster than pyroute2's; sockets opened once inside
each host namespace and kept), pid files checked
against /proc, and the nftables generation id per host (one netlink request, ~0.4 ms). The iptables
baseline has no generation id: a hash of `iptables-save` (counters left out) stands in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from bgp import bird, speaker
from bgp.files import SpeakerFiles, read_json
from lab.controller.state import HostSeen, ProcessSeen, ProcessWant
from policy_dataplane.dataplane.nft.nftnl import GenerationSocket
from topology import names, netns, processes, responder_ctl
from topology.netns import CommandFailed, run_in
from topology.rtnl import RtnlSocket

_COUNTERS = re.compile(r"\[\d+:\d+\]")


def iptables_hash(host_netns: str) -> str | None:
    try:
        text = run_in(host_netns, ["iptables-legacy-save", "-t", "filter"])
        sets = run_in(host_netns, ["ipset", "save"])
    except (CommandFailed, OSError):
        return None
    lines = [_COUNTERS.sub("", line) for line in (text + sets).splitlines() if not line.startswith("#")]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


class HostReader:
    """Keeps one rtnetlink and one nf_tables socket per host namespace (hosts are never recreated, pods come
    and go): a generation read is then one request, with no namespace to enter."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._sockets: dict[str, RtnlSocket] = {}
        self._nft: dict[str, GenerationSocket] = {}

    def fingerprint(self, host_netns: str) -> str | None:
        if self.backend != "nftables":
            return iptables_hash(host_netns)
        sock = self._nft.get(host_netns)
        if sock is None:
            try:
                sock = self._nft[host_netns] = GenerationSocket(host_netns)
            except netns.NetnsError:
                return None
        try:
            generation = sock.read()
            return None if generation is None else str(generation)
        except OSError:
            self._nft.pop(host_netns).close()
            return None

    def read(self, host_netns: str) -> HostSeen:
        if not netns.exists(host_netns):
            self._drop(host_netns)
            return HostSeen(False, None)
        sock = self._socket(host_netns)
        pod_links = {link.index: link for link in sock.links().values()
                     if link.name.startswith(names.HOST_VETH_PREFIX)}
        links = frozenset(link.name for link in pod_links.values() if link.oper_up)
        every = sock.routes()
        routes = frozenset(r.prefix for r in every if r.oif in pod_links and r.prefix.endswith("/32"))
        return HostSeen(True, self.fingerprint(host_netns), links, routes, frozenset(r.prefix for r in every))

    def route_destinations(self, node_netns: str) -> frozenset[str]:
        """Every route destination in the namespace (for missing BGP routes: one dump on a kept socket)."""
        if not netns.exists(node_netns):
            self._drop(node_netns)
            return frozenset()
        return frozenset(r.prefix for r in self._socket(node_netns).routes())

    def _socket(self, host_netns: str) -> RtnlSocket:
        if host_netns not in self._sockets:
            with netns.entered(host_netns):
                self._sockets[host_netns] = RtnlSocket()
        return self._sockets[host_netns]

    def _drop(self, host_netns: str) -> None:
        for sockets in (self._sockets, self._nft):
            sock = sockets.pop(host_netns, None)
            if sock is not None:
                sock.close()

    def close(self) -> None:
        for host_netns in list(self._sockets.keys() | self._nft.keys()):
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


_TARGETS_CACHE: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}


def responder_targets(paths: names.LabPaths) -> frozenset[str] | None:
    """The namespaces in the responder's pods file (parsed again only when the file changed)."""
    path = names.responder_pods_file(paths)
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_ino)
        cached = _TARGETS_CACHE.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        pods = responder_ctl.read_responder_pods(path)
    except (OSError, ValueError):
        return None
    targets = frozenset(t.netns for t in pods.targets)
    _TARGETS_CACHE[str(path)] = (stamp, targets)
    return targets
