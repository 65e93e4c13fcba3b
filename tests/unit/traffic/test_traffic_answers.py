"""Answers (built with Scapy as the kernel would send them) map back to the probe that caused them."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.packet import Raw

from traffic.answers import parse_answer
from traffic.model import Protocol
from traffic.packets import MAGIC, builder, source_port

A, B, HOST = "10.65.0.2", "10.65.0.66", "10.99.0.1"
A_B, B_B = bytes([10, 65, 0, 2]), bytes([10, 65, 0, 66])
TOKEN = 0xDEADBEEF


def test_syn_ack_and_rst_acknowledge_the_token() -> None:
    for flags, evidence in (("SA", "syn-ack"), ("RA", "rst")):
        reply = IP(src=B, dst=A) / TCP(sport=80, dport=source_port(TOKEN), flags=flags, ack=TOKEN + 1)
        assert parse_answer(bytes(reply)) == (TOKEN, A_B, B_B, evidence)


def test_token_wraps_at_32_bits() -> None:
    reply = IP(src=B, dst=A) / TCP(sport=80, dport=61000, flags="RA", ack=0)
    assert parse_answer(bytes(reply))[0] == 0xFFFFFFFF


def test_a_syn_is_not_an_answer() -> None:
    assert parse_answer(builder(Protocol.TCP)(A_B, B_B, 80, TOKEN)) is None


def test_udp_echo_returns_the_token() -> None:
    reply = IP(src=B, dst=A) / UDP(sport=53, dport=61000) / Raw(MAGIC + TOKEN.to_bytes(4, "big"))
    assert parse_answer(bytes(reply)) == (TOKEN, A_B, B_B, "udp-reply")


def test_udp_without_our_magic_is_ignored() -> None:
    assert parse_answer(bytes(IP(src=B, dst=A) / UDP() / Raw(b"hello world"))) is None


def test_echo_reply() -> None:
    reply = IP(src=B, dst=A) / ICMP(type=0, id=TOKEN >> 16, seq=TOKEN & 0xFFFF) / Raw(MAGIC + TOKEN.to_bytes(4, "big"))
    assert parse_answer(bytes(reply)) == (TOKEN, A_B, B_B, "echo-reply")


def quoted_udp_error(outer_src: str, code: int) -> bytes:
    probe = builder(Protocol.UDP)(A_B, B_B, 53, TOKEN)
    return bytes(IP(src=outer_src, dst=A) / ICMP(type=3, code=code) / IPerror(probe))


def test_port_unreachable_from_the_destination_is_delivery() -> None:
    assert parse_answer(quoted_udp_error(B, 3)) == (TOKEN, A_B, B_B, "port-unreachable")


def test_unreachable_from_a_firewall_is_a_rejection() -> None:
    assert parse_answer(quoted_udp_error(HOST, 13)) == (TOKEN, A_B, B_B, "rejected icmp 3/13")
    assert parse_answer(quoted_udp_error(HOST, 3))[3] == "rejected icmp 3/3"


def test_quoted_tcp_and_icmp_probes_give_their_token() -> None:
    for protocol in (Protocol.TCP, Protocol.ICMP, Protocol.SCTP):
        probe = builder(protocol)(A_B, B_B, 80, TOKEN)
        error = bytes(IP(src=HOST, dst=A) / ICMP(type=3, code=10) / IPerror(probe))
        assert parse_answer(error) == (TOKEN, A_B, B_B, "rejected icmp 3/10")


def test_sctp_init_seen_at_the_destination() -> None:
    assert parse_answer(builder(Protocol.SCTP)(A_B, B_B, 3868, TOKEN)) == (TOKEN, A_B, B_B, "captured")


def test_truncated_and_foreign_packets_are_ignored() -> None:
    assert parse_answer(b"") is None
    assert parse_answer(bytes(IP(src=B, dst=A) / ICMP(type=8))[:24]) is None
    assert parse_answer(bytes(IP(src=B, dst=A, proto=47) / Raw(b"x" * 20))) is None
    assert parse_answer(bytes(IP(src=B, dst=A) / ICMP(type=3, code=3) / IPerror(src=A, dst=B) / UDPerror())) is None
