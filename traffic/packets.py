"""Probe packets: built once with Scapy as templates, then patched per probe (addresses, ports, token, checksum).

Every probe carries a 32-bit token that its answer echoes back, so replies are matched by a dict lookup:
TCP: the SYN's sequence number (a SYN-ACK or RST acknowledges token + 1); UDP: the payload (an echo returns
it, an ICMP port-unreachable quotes it); ICMP echo: id and sequence; SCTP: the INIT's initiate tag (read at the
destination). The IP header checksum and total length are filled by the kernel (IP_HDRINCL raw sockets).
Pure: nothing here touches the system.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache

from traffic.checksum import crc32c, ones_sum
from traffic.model import Protocol

IP_HEADER_LEN = 20
ICMP_PROBE_TYPE, ICMP_PROBE_CODE = 8, 0  # an echo request: what the oracle is asked about for ICMP probes
MAGIC = b"nplp"  # start of every UDP and ICMP probe payload, so our packets are known in captures

# Source ports above Linux's ephemeral range (32768-60999): no socket of the kernel's own ever holds them,
# so an answer reaches no socket; the sender's kernel then RSTs a SYN-ACK (which closes the destination's
# half-open connection: harmless) and ignores an RST. The token picks the port, so consecutive probes of a
# pair use different 4-tuples and do not meet an earlier probe's conntrack entry.
SOURCE_PORT_BASE = 61000
SOURCE_PORT_COUNT = 4500

Builder = Callable[[bytes, bytes, int, int], bytes]
"""build(src_ip_bytes, dst_ip_bytes, dport, token) -> the IP packet to send."""


def source_port(token: int) -> int:
    return SOURCE_PORT_BASE + token % SOURCE_PORT_COUNT


@cache
def template(protocol: Protocol) -> bytes:
    """The Scapy-built packet every probe of `protocol` starts from (addresses, ports, token zeroed)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.sctp import SCTP, SCTPChunkInit
    from scapy.packet import Packet, Raw

    ip = IP(src="0.0.0.0", dst="0.0.0.0", ttl=64, flags="DF", id=0)
    l4: Packet
    if protocol is Protocol.TCP:
        l4 = TCP(sport=0, dport=0, seq=0, flags="S", window=64240, chksum=0)
    elif protocol is Protocol.UDP:
        l4 = UDP(sport=0, dport=0, chksum=0) / Raw(MAGIC + b"\0\0\0\0")
    elif protocol is Protocol.ICMP:
        l4 = ICMP(type=ICMP_PROBE_TYPE, code=ICMP_PROBE_CODE, id=0, seq=0, chksum=0) / Raw(MAGIC + b"\0\0\0\0")
    else:
        l4 = SCTP(sport=0, dport=0, tag=0, chksum=0) / SCTPChunkInit(
            init_tag=0, a_rwnd=65535, n_out_streams=1, n_in_streams=1, init_tsn=1
        )
    return bytes(ip / l4)


def _pseudo_header_base(protocol_number: int, segment: bytes) -> int:
    """Sum of the segment's fixed words plus the pseudo-header's protocol and length (addresses added later)."""
    return ones_sum(segment) + protocol_number + len(segment)


def _fold(total: int) -> int:
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@cache
def _address_sum(address: bytes) -> int:
    return ((address[0] << 8) | address[1]) + ((address[2] << 8) | address[3])


def _tcp_builder() -> Builder:
    tmpl = template(Protocol.TCP)
    base = _pseudo_header_base(6, tmpl[IP_HEADER_LEN:])
    pack_into = struct.pack_into

    def build(src: bytes, dst: bytes, dport: int, token: int) -> bytes:
        sport = SOURCE_PORT_BASE + token % SOURCE_PORT_COUNT
        pkt = bytearray(tmpl)
        pack_into("!4s4sHHI", pkt, 12, src, dst, sport, dport, token)
        total = base + _address_sum(src) + _address_sum(dst) + sport + dport + (token >> 16) + (token & 0xFFFF)
        pack_into("!H", pkt, 36, _fold(total))
        return bytes(pkt)

    return build


def _udp_builder() -> Builder:
    tmpl = template(Protocol.UDP)
    segment = tmpl[IP_HEADER_LEN:]
    base = _pseudo_header_base(17, segment)  # includes the UDP length field once more, as the header has it
    pack_into = struct.pack_into

    def build(src: bytes, dst: bytes, dport: int, token: int) -> bytes:
        sport = SOURCE_PORT_BASE + token % SOURCE_PORT_COUNT
        pkt = bytearray(tmpl)
        pack_into("!4s4sHH", pkt, 12, src, dst, sport, dport)
        pack_into("!I", pkt, 32, token)
        total = base + _address_sum(src) + _address_sum(dst) + sport + dport + (token >> 16) + (token & 0xFFFF)
        pack_into("!H", pkt, 26, _fold(total) or 0xFFFF)  # 0 means "no checksum" in UDP
        return bytes(pkt)

    return build


def _icmp_builder() -> Builder:
    tmpl = template(Protocol.ICMP)
    base = ones_sum(tmpl[IP_HEADER_LEN:])
    pack_into = struct.pack_into

    def build(src: bytes, dst: bytes, dport: int, token: int) -> bytes:
        pkt = bytearray(tmpl)
        pack_into("!4s4s", pkt, 12, src, dst)
        pack_into("!HH", pkt, 24, token >> 16, token & 0xFFFF)
        pack_into("!I", pkt, 32, token)
        total = base + 2 * ((token >> 16) + (token & 0xFFFF))
        pack_into("!H", pkt, 22, _fold(total))
        return bytes(pkt)

    return build


def _sctp_builder() -> Builder:
    tmpl = template(Protocol.SCTP)
    pack_into = struct.pack_into

    def build(src: bytes, dst: bytes, dport: int, token: int) -> bytes:
        sport = SOURCE_PORT_BASE + token % SOURCE_PORT_COUNT
        pkt = bytearray(tmpl)
        pack_into("!4s4sHH", pkt, 12, src, dst, sport, dport)
        pack_into("!I", pkt, 36, token)  # the INIT chunk's initiate tag
        pack_into("<I", pkt, 28, crc32c(bytes(pkt[IP_HEADER_LEN:])))
        return bytes(pkt)

    return build


_BUILDERS: dict[Protocol, Callable[[], Builder]] = {
    Protocol.TCP: _tcp_builder,
    Protocol.UDP: _udp_builder,
    Protocol.ICMP: _icmp_builder,
    Protocol.SCTP: _sctp_builder,
}


@cache
def builder(protocol: Protocol) -> Builder:
    return _BUILDERS[protocol]()
