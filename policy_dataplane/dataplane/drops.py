"""Denied packets as they happen, with the policy that denied them (like kube-iptables-tailer), and Log hits.

Every Deny rule, Log rule, tier-end default deny and unknown-interface drop of the program logs to NFLOG
group `LOG_GROUP` with a prefix `<kind> <chain> <index>` (see nft/render.py). A `DropWatcher` opens one
nfnetlink_log socket per host namespace (our own netlink, no daemon), binds the group with packet copy,
and turns each message into a `DropEvent`: addresses, protocol and ports from the copied header, and the
policy, rule or isolating policies from the names the backend gives for the host's chains (its `describe`,
asked again when a chain it does not know shows up). Parsing (`parse_nflog`, `event_from`) is pure; only the watcher touches sockets.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from policy_dataplane.dataplane.counters import TableInfo
from policy_dataplane.dataplane.hostprogram import LOG_GROUP
from topology.engine import Engine
from topology.engines import get_engine

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_PAYLOAD, NFULA_PREFIX = 9, 10
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
COPY_RANGE = 96  # IP header + transport ports / ICMP type: enough to describe the packet
KINDS = {"D": "deny", "L": "log", "T": "default-deny", "U": "unknown-interface"}
PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}


@dataclass(frozen=True)
class PacketInfo:
    src: IPv4Address
    dst: IPv4Address
    protocol: int
    src_port: int | None = None
    dst_port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


@dataclass(frozen=True)
class DropEvent:
    host: str
    time: float
    kind: str  # deny, log, default-deny, unknown-interface
    packet: PacketInfo
    src_name: str | None  # ns/pod when the address is a pod's
    dst_name: str | None
    policy: str | None = None  # the policy whose rule denied / logged
    rule: int | None = None
    direction: str | None = None  # ingress / egress
    endpoint: str | None = None  # for default deny: the pod isolated in that direction
    tier: str | None = None
    isolating_policies: tuple[str, ...] = ()

    def describe(self) -> str:
        p = self.packet
        what = PROTOCOL_NAMES.get(p.protocol, str(p.protocol))
        if p.dst_port is not None:
            what += f"/{p.dst_port}"
        elif p.icmp_type is not None:
            what += f" type {p.icmp_type}"
        src, dst = self.src_name or str(p.src), self.dst_name or str(p.dst)
        if self.kind == "default-deny":
            why = (f"no policy in tier {self.tier} allowed it ({self.direction} of {self.endpoint}; isolated by "
                   f"{', '.join(self.isolating_policies) or 'being a host endpoint: no default-allow profile'})")
        elif self.kind == "unknown-interface":
            why = "interface not programmed yet (fail closed)"
        else:
            why = f"{self.policy} rule {self.rule} ({self.direction})"
        verb = "logged" if self.kind == "log" else "dropped"
        return f"{self.host}: {verb} {src} -> {dst} {what}: {why}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["packet"] = {k: str(v) if isinstance(v, IPv4Address) else v for k, v in d["packet"].items()}
        return d


# --- pure parsing ----------------------------------------------------------------------------------------


def _attributes(data: bytes) -> dict[int, bytes]:
    out, offset = {}, 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        out[kind & 0x7FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def parse_nflog(message: bytes) -> list[tuple[str, bytes]]:
    """Netlink datagram -> [(prefix, copied packet)] for every NFLOG packet message in it."""
    out, offset = [], 0
    while offset + 16 <= len(message):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", message, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            attrs = _attributes(message[offset + 20:offset + length])  # after nlmsghdr + nfgenmsg
            prefix = attrs.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode(errors="replace")
            out.append((prefix, attrs.get(NFULA_PAYLOAD, b"")))
        offset += (length + 3) & ~3
    return out


def parse_packet(payload: bytes) -> PacketInfo | None:
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    ihl = (payload[0] & 0x0F) * 4
    protocol = payload[9]
    src, dst = IPv4Address(payload[12:16]), IPv4Address(payload[16:20])
    l4 = payload[ihl:]
    if protocol in (6, 17, 132) and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4)
        return PacketInfo(src, dst, protocol, sport, dport)
    if protocol == 1 and len(l4) >= 2:
        return PacketInfo(src, dst, protocol, icmp_type=l4[0], icmp_code=l4[1])
    return PacketInfo(src, dst, protocol)


def event_from(host: str, prefix: str, packet: PacketInfo, table: TableInfo,
               names: Callable[[IPv4Address], str | None], when: float) -> DropEvent | None:
    parts = prefix.split()
    if len(parts) != 3 or parts[0] not in KINDS:
        return None
    kind, chain, index = KINDS[parts[0]], parts[1], int(parts[2]) if parts[2].isdigit() else 0
    base = DropEvent(host, when, kind, packet, names(packet.src), names(packet.dst))
    if kind in ("deny", "log"):
        policy, direction = table.policy_of_chain.get(chain, (chain, None))
        return _replace(base, policy=policy, rule=index, direction=direction)
    if kind == "default-deny":
        end = table.tier_ends.get((chain, index))
        if end is None:
            return base
        return _replace(base, direction=end.direction, endpoint=end.endpoint, tier=end.tier,
                        isolating_policies=end.policies)
    return base


def _replace(event: DropEvent, **changes: Any) -> DropEvent:
    return replace(event, **changes)


def knows(table: TableInfo, prefix: str) -> bool:
    parts = prefix.split()
    if len(parts) != 3 or parts[0] not in ("D", "L", "T"):
        return True
    if parts[0] == "T":
        return (parts[1], int(parts[2]) if parts[2].isdigit() else 0) in table.tier_ends
    return parts[1] in table.policy_of_chain


# --- the socket side ---------------------------------------------------------------------------------------


def _config_message(group: int, attributes: bytes, seq: int) -> bytes:
    nfgen = struct.pack("!BBH", socket.AF_UNSPEC, 0, group)  # res_id (the group) is big-endian
    body = nfgen + attributes
    header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG,
                         NLM_F_REQUEST | NLM_F_ACK, seq, 0)
    return header + body


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * ((4 - len(data) % 4) % 4)


def _expect_ack(sock: socket.socket) -> None:
    reply = sock.recv(65536)
    length, kind = struct.unpack_from("=IH", reply)
    if kind == NLMSG_ERROR:
        (error,) = struct.unpack_from("=i", reply, 16)
        if error != 0:
            raise OSError(-error, f"nfnetlink_log config refused: {error}")


def open_nflog(netns: str, group: int = LOG_GROUP, engine: Engine | None = None) -> socket.socket:
    """A netlink socket in `netns` bound to NFLOG `group` with packet copy (only one listener per group)."""
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind((0, 0))
        return sock

    sock = (engine or get_engine()).call_in(netns, make)
    try:
        sock.send(_config_message(group, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])), 1))
        _expect_ack(sock)
        sock.send(_config_message(group, _attr(NFULA_CFG_MODE, struct.pack("!IBB", COPY_RANGE,
                                                                          NFULNL_COPY_PACKET, 0)), 2))
        _expect_ack(sock)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class DropWatcher:
    """Listens on every host: `poll(timeout)` returns the events that arrived; `follow()` yields forever."""

    def __init__(self, host_netns: Mapping[str, str], describe: Callable[[str], TableInfo],
                 names: Callable[[IPv4Address], str | None] | None = None, group: int = LOG_GROUP,
                 engine: Engine | None = None) -> None:
        """`describe(host)`: the names behind that host's chains, from its backend (every backend logs with
        the same prefixes)."""
        self.names = names or (lambda ip: None)
        self.host_netns = dict(host_netns)
        self._describe = describe
        self.tables = {host: describe(host) for host in host_netns}
        self.sockets: dict[socket.socket, str] = {}
        try:
            for host, netns in host_netns.items():
                self.sockets[open_nflog(netns, group, engine)] = host
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> DropWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()

    def _events(self, sock: socket.socket) -> list[DropEvent]:
        host = self.sockets[sock]
        out: list[DropEvent] = []
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return out
            now = time.time()
            for prefix, payload in parse_nflog(data):
                packet = parse_packet(payload)
                if packet is None:
                    continue
                if not knows(self.tables[host], prefix):  # the program changed since we read it
                    self.tables[host] = self._describe(host)
                event = event_from(host, prefix, packet, self.tables[host], self.names, now)
                if event is not None:
                    out.append(event)

    def poll(self, timeout: float) -> list[DropEvent]:
        """Events that arrive within `timeout` seconds (returns as soon as some did, after a short settle)."""
        deadline = time.monotonic() + timeout
        out: list[DropEvent] = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select(list(self.sockets), [], [], max(0.0, deadline - time.monotonic()))
            for sock in ready:
                out += self._events(sock)
            if out:
                deadline = min(deadline, time.monotonic() + 0.05)
        return out

    def follow(self) -> Iterator[DropEvent]:
        while True:
            yield from self.poll(1.0)


__all__ = ["DropWatcher", "DropEvent", "PacketInfo", "parse_nflog", "parse_packet", "event_from", "open_nflog"]
