"""The bulk prober's arrays must say exactly what the one-probe-at-a-time code says: the same SYN bytes as
`packets.builder`, the same reading of answers as `answers.parse_answer`, the same pairs as `all_pairs`."""

from __future__ import annotations

from ipaddress import IPv4Address

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, TCPerror

from traffic.answers import parse_answer
from traffic.bulk_packets import EVIDENCE, NO_ANSWER, parse_tcp_answers, tcp_syns
from traffic.matrix import all_pair_indices, all_pairs
from traffic.model import ProbeEndpoint, Protocol
from traffic.packets import builder

u32 = st.integers(min_value=0, max_value=2**32 - 1)
probes = st.lists(st.tuples(u32, u32, u32), min_size=1, max_size=40)


@given(probes, st.integers(min_value=1, max_value=65535), st.booleans())
def test_syns_are_the_builders_bytes(rows: list[tuple[int, int, int]], port: int, port_per_row: bool) -> None:
    src, dst, token = (np.array(col, dtype=np.uint32) for col in zip(*rows, strict=True))
    ports = [(port + i) % 65536 for i in range(len(rows))] if port_per_row else [port] * len(rows)
    built = tcp_syns(src, dst, ports if port_per_row else port, token)
    make = builder(Protocol.TCP)
    for i, (s, d, t) in enumerate(rows):
        assert bytes(built[i]) == make(s.to_bytes(4, "big"), d.to_bytes(4, "big"), ports[i], t)


def _answer(kind: int, src: int, dst: int, ack: int, flags: str, ihl_options: bool) -> bytes:
    ip = IP(src=str(IPv4Address(src)), dst=str(IPv4Address(dst)),
            options=[b"\x01\x01\x01\x00"] if ihl_options else [])  # NOPs + EOL: a 24-byte header
    if kind == 0:
        return bytes(ip / TCP(sport=80, dport=61000, seq=7, ack=ack, flags=flags))
    if kind == 1:
        return bytes(ip / UDP(sport=80, dport=61000) / b"nplp\0\0\0\1")
    if kind == 2:
        return bytes(ip / ICMP(type=3, code=3) / IP(src="10.0.0.1", dst="10.0.0.2") / TCPerror(seq=ack))
    return bytes(ip / TCP(sport=80, dport=61000, seq=7, ack=ack, flags=flags))[:30]  # cut short


answers = st.tuples(st.integers(0, 3), u32, u32, u32, st.sampled_from(["SA", "RA", "R", "S", "A", "FA", "SAR"]),
                    st.booleans())


@settings(max_examples=60)
@given(st.lists(answers, min_size=1, max_size=30))
def test_answers_read_as_parse_answer_reads_them(specs: list[tuple[int, int, int, int, str, bool]]) -> None:
    packets = [_answer(*spec) for spec in specs]
    rows = np.zeros((len(packets), 128), dtype=np.uint8)
    for i, packet in enumerate(packets):
        rows[i, :len(packet)] = np.frombuffer(packet[:128], dtype=np.uint8)
    tokens, probe_src, probe_dst, kind = parse_tcp_answers(rows, np.array([len(p) for p in packets]))
    for i, packet in enumerate(packets):
        answer = parse_answer(packet)
        if answer is None or answer[3] not in EVIDENCE.values() or IP(packet).proto != 6:
            assert kind[i] == NO_ANSWER, (specs[i], answer)
            continue
        token, src, dst, evidence = answer
        assert EVIDENCE[int(kind[i])] == evidence
        assert (int(tokens[i]), int(probe_src[i]), int(probe_dst[i])) == (
            token, int.from_bytes(src, "big"), int.from_bytes(dst, "big"))


@given(st.integers(min_value=0, max_value=12))
def test_pair_indices_are_all_pairs(n: int) -> None:
    endpoints = [ProbeEndpoint(f"ns{i % 3}/p{i:02d}", f"n{i}", IPv4Address(i + 1)) for i in range(n)]
    ordered = sorted(endpoints, key=lambda e: (e.group, e.name))
    sources, destinations = all_pair_indices(n)
    assert [(ordered[a], ordered[b]) for a, b in zip(sources, destinations, strict=True)] == all_pairs(ordered)
