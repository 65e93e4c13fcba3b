"""Patched probe packets must be exactly what Scapy would build, checksums included."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.sctp import SCTP, SCTPChunkInit

from traffic.checksum import crc32c, internet_checksum
from traffic.model import Protocol
from traffic.packets import MAGIC, SOURCE_PORT_BASE, SOURCE_PORT_COUNT, builder, source_port

addresses = st.integers(min_value=1, max_value=2**32 - 2).map(lambda n: IPv4Address(n).packed)
ports = st.integers(min_value=1, max_value=65535)
tokens = st.integers(min_value=1, max_value=2**32 - 1)


def rebuilt(packet: bytes) -> IP:
    """Parse, drop every checksum and length, let Scapy recompute them."""
    parsed = IP(packet)
    del parsed.chksum, parsed.len
    for layer in (TCP, UDP, ICMP, SCTP):
        if parsed.haslayer(layer):
            del parsed[layer].chksum
    if parsed.haslayer(UDP):
        del parsed[UDP].len
    return IP(bytes(parsed))


@given(addresses, addresses, ports, tokens)
def test_tcp_syn_matches_scapy(src: bytes, dst: bytes, dport: int, token: int) -> None:
    packet = builder(Protocol.TCP)(src, dst, dport, token)
    parsed = IP(packet)
    assert parsed[TCP].flags == "S"
    assert (parsed[TCP].sport, parsed[TCP].dport, parsed[TCP].seq) == (source_port(token), dport, token)
    assert (parsed.src, parsed.dst) == (str(IPv4Address(src)), str(IPv4Address(dst)))
    assert parsed[TCP].chksum == rebuilt(packet)[TCP].chksum


@given(addresses, addresses, ports, tokens)
def test_udp_matches_scapy_and_carries_the_token(src: bytes, dst: bytes, dport: int, token: int) -> None:
    packet = builder(Protocol.UDP)(src, dst, dport, token)
    parsed = IP(packet)
    assert bytes(parsed[UDP].payload) == MAGIC + token.to_bytes(4, "big")
    assert parsed[UDP].chksum == rebuilt(packet)[UDP].chksum


@given(addresses, addresses, tokens)
def test_icmp_echo_matches_scapy(src: bytes, dst: bytes, token: int) -> None:
    packet = builder(Protocol.ICMP)(src, dst, 0, token)
    parsed = IP(packet)
    assert (parsed[ICMP].type, parsed[ICMP].id, parsed[ICMP].seq) == (8, token >> 16, token & 0xFFFF)
    assert parsed[ICMP].chksum == rebuilt(packet)[ICMP].chksum
    assert internet_checksum(packet[20:]) == 0


@given(addresses, addresses, ports, tokens)
def test_sctp_init_matches_scapy_crc32c(src: bytes, dst: bytes, dport: int, token: int) -> None:
    packet = builder(Protocol.SCTP)(src, dst, dport, token)
    parsed = IP(packet)
    assert parsed[SCTPChunkInit].init_tag == token
    assert parsed[SCTP].dport == dport
    assert parsed[SCTP].chksum == rebuilt(packet)[SCTP].chksum


def test_crc32c_known_vector() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def test_source_ports_stay_above_the_ephemeral_range() -> None:
    assert SOURCE_PORT_BASE > 60999 and SOURCE_PORT_BASE + SOURCE_PORT_COUNT - 1 <= 65535
    assert {source_port(t) for t in range(10_000)} == set(range(SOURCE_PORT_BASE, SOURCE_PORT_BASE + SOURCE_PORT_COUNT))


@pytest.mark.parametrize("protocol", list(Protocol))
def test_probes_differ_only_where_they_should(protocol: Protocol) -> None:
    build = builder(protocol)
    a = build(b"\x0a\0\0\x01", b"\x0a\0\0\x02", 80, 7)
    b = build(b"\x0a\0\0\x01", b"\x0a\0\0\x02", 80, 8)
    assert len(a) == len(b) and a != b
