"""Read what came back: turn a captured IPv4 packet into (token, probe source, probe destination, evidence).

Pure and allocation-light (it runs once per captured packet). The probe's addresses are given as the answer
implies them: swapped for a direct reply, the quoted inner header for an ICMP error, as-is for a probe
captured at its destination (SCTP). The engine checks them against the probe it sent with that token.
"""

from __future__ import annotations

import struct

from traffic.packets import MAGIC

Answer = tuple[int, bytes, bytes, str]
"""(token, probe_src, probe_dst, evidence)."""

# Evidence that proves delivery to the destination and a reply from it, by kind of answer.
SYN_ACK = "syn-ack"
RST = "rst"
UDP_REPLY = "udp-reply"
ECHO_REPLY = "echo-reply"
PORT_UNREACHABLE = "port-unreachable"
CAPTURED = "captured"
REJECTED = "rejected"  # an ICMP error that is not the destination's port-unreachable: a firewall said no

_TCP_SYN, _TCP_RST, _TCP_ACK = 0x02, 0x04, 0x10
_unpack_from = struct.unpack_from


def parse_answer(data: bytes) -> Answer | None:
    if len(data) < 28 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    proto = data[9]
    src, dst = data[12:16], data[16:20]
    if proto == 6:
        return _tcp(data, ihl, src, dst)
    if proto == 1:
        return _icmp(data, ihl, src, dst)
    if proto == 17:
        return _udp(data, ihl, src, dst)
    if proto == 132:
        return _sctp(data, ihl, src, dst)
    return None


def _tcp(data: bytes, ihl: int, src: bytes, dst: bytes) -> Answer | None:
    if len(data) < ihl + 14:
        return None
    ack = _unpack_from("!I", data, ihl + 8)[0]
    flags = data[ihl + 13]
    if flags & _TCP_RST and flags & _TCP_ACK:
        return ((ack - 1) & 0xFFFFFFFF, dst, src, RST)
    if flags & _TCP_SYN and flags & _TCP_ACK:
        return ((ack - 1) & 0xFFFFFFFF, dst, src, SYN_ACK)
    return None


def _udp(data: bytes, ihl: int, src: bytes, dst: bytes) -> Answer | None:
    payload = ihl + 8
    if len(data) < payload + 8 or data[payload : payload + 4] != MAGIC:
        return None
    return (_unpack_from("!I", data, payload + 4)[0], dst, src, UDP_REPLY)


def _icmp(data: bytes, ihl: int, src: bytes, dst: bytes) -> Answer | None:
    icmp_type, code = data[ihl], data[ihl + 1]
    if icmp_type == 0:
        if len(data) < ihl + 16 or data[ihl + 8 : ihl + 12] != MAGIC:
            return None
        return (_unpack_from("!I", data, ihl + 12)[0], dst, src, ECHO_REPLY)
    if icmp_type == 3:
        return _icmp_error(data, ihl + 8, src, code)
    return None


def _icmp_error(data: bytes, inner: int, outer_src: bytes, code: int) -> Answer | None:
    """An ICMP destination-unreachable quoting one of our probes: which one, and was it the destination's
    port-unreachable (delivered, no listener) or a rejection on the way."""
    if len(data) < inner + 20:
        return None
    inner_ihl = (data[inner] & 0x0F) * 4
    inner_proto = data[inner + 9]
    probe_src, probe_dst = data[inner + 12 : inner + 16], data[inner + 16 : inner + 20]
    l4 = inner + inner_ihl
    token: int | None = None
    if inner_proto == 17 and len(data) >= l4 + 16 and data[l4 + 8 : l4 + 12] == MAGIC:
        token = _unpack_from("!I", data, l4 + 12)[0]
    elif inner_proto == 6 and len(data) >= l4 + 8:
        token = _unpack_from("!I", data, l4 + 4)[0]
    elif inner_proto == 1 and len(data) >= l4 + 8:
        ident, seq = _unpack_from("!HH", data, l4 + 4)
        token = (ident << 16) | seq
    elif inner_proto == 132 and len(data) >= l4 + 20:
        token = _unpack_from("!I", data, l4 + 16)[0]
    if token is None:
        return None
    if code == 3 and outer_src == probe_dst:
        return (token, probe_src, probe_dst, PORT_UNREACHABLE)
    return (token, probe_src, probe_dst, f"{REJECTED} icmp 3/{code}")


def _sctp(data: bytes, ihl: int, src: bytes, dst: bytes) -> Answer | None:
    if len(data) < ihl + 20 or data[ihl + 12] != 1:  # chunk type 1: INIT
        return None
    return (_unpack_from("!I", data, ihl + 16)[0], src, dst, CAPTURED)


def is_delivery(evidence: str) -> bool:
    return not evidence.startswith(REJECTED)
