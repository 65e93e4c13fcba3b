"""TCP probes by the million: SYNs built and answers parsed as numpy arrays, one row per packet.

The same bytes as `traffic.packets` (its Scapy-built TCP template, patched: addresses, ports, token,
incremental checksum) and the same reading as `traffic.answers` (a SYN-ACK or RST acknowledges token + 1),
but for whole arrays at once, so the bulk prober (`traffic.bulk`) spends no Python per probe.
Pure: nothing here touches the system.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from traffic.checksum import ones_sum
from traffic.model import Protocol
from traffic.packets import IP_HEADER_LEN, SOURCE_PORT_BASE, SOURCE_PORT_COUNT, template

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

TCP_PACKET_LEN = IP_HEADER_LEN + 20

# Answer kinds in the bulk arrays (0: no answer). OTHER: an ICMP answer, its evidence text kept aside.
NO_ANSWER, SYN_ACK, RST, OTHER = 0, 1, 2, 3
EVIDENCE = {SYN_ACK: "syn-ack", RST: "rst"}

_TCP_SYN, _TCP_RST, _TCP_ACK = 0x02, 0x04, 0x10


def _be_bytes(values: npt.NDArray[np.integer], width: int) -> U8:
    """Big-endian bytes of unsigned integers: one row of `width` bytes per value."""
    dtype = {2: ">u2", 4: ">u4"}[width]
    return np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(len(values), width)


def _address_sums(addresses: U32) -> npt.NDArray[np.uint64]:
    a = addresses.astype(np.uint64)
    return (a >> np.uint64(16)) + (a & np.uint64(0xFFFF))


def tcp_syns(src: U32, dst: U32, port: int | npt.ArrayLike, tokens: U32) -> U8:
    """One SYN per row (TCP_PACKET_LEN bytes), byte for byte what `packets.builder(Protocol.TCP)` makes for
    (src, dst, port, token); addresses as host-order uint32 (int(IPv4Address)); one port or one per row."""
    tmpl = np.frombuffer(template(Protocol.TCP), dtype=np.uint8)
    n = len(tokens)
    pkts = np.tile(tmpl, (n, 1))
    tokens64 = tokens.astype(np.uint64)
    sports = np.uint64(SOURCE_PORT_BASE) + tokens64 % np.uint64(SOURCE_PORT_COUNT)
    pkts[:, 12:16] = _be_bytes(src, 4)
    pkts[:, 16:20] = _be_bytes(dst, 4)
    pkts[:, 20:22] = _be_bytes(sports, 2)
    ports = np.broadcast_to(np.asarray(port, dtype=np.uint64), (n,))
    pkts[:, 22:24] = _be_bytes(ports, 2)
    pkts[:, 24:28] = _be_bytes(tokens, 4)
    base = ones_sum(template(Protocol.TCP)[IP_HEADER_LEN:]) + 6 + TCP_PACKET_LEN - IP_HEADER_LEN
    total = (np.uint64(base) + _address_sums(src) + _address_sums(dst) + sports + ports
             + (tokens64 >> np.uint64(16)) + (tokens64 & np.uint64(0xFFFF)))
    for _ in range(2):
        total = (total & np.uint64(0xFFFF)) + (total >> np.uint64(16))
    pkts[:, 36:38] = _be_bytes(~total & np.uint64(0xFFFF), 2)
    return pkts


def _be32(rows: U8, offsets: npt.NDArray[np.intp]) -> U32:
    """The big-endian 32-bit word at a per-row byte offset."""
    idx = np.arange(len(rows))
    out = np.zeros(len(rows), dtype=np.uint32)
    for k in range(4):
        out = (out << np.uint32(8)) | rows[idx, offsets + k].astype(np.uint32)
    return out


def parse_tcp_answers(rows: U8, lengths: npt.NDArray[np.integer]) -> tuple[U32, U32, U32, U8]:
    """Captured IPv4 packets (one per row, `lengths` bytes of each valid) -> (token, probe source, probe
    destination, kind): kind SYN_ACK or RST where `answers.parse_answer` says "syn-ack" or "rst", NO_ANSWER
    for anything else (rows too short, not IPv4 TCP, other flags). Addresses as host-order uint32."""
    n = len(rows)
    if n == 0:
        empty = np.zeros(0, dtype=np.uint32)
        return empty, empty, empty, np.zeros(0, dtype=np.uint8)
    lengths = lengths.astype(np.intp)
    ihl = (rows[:, 0] & 0x0F).astype(np.intp) * 4
    width = rows.shape[1]
    ok = (lengths >= 28) & (rows[:, 0] >> 4 == 4) & (rows[:, 9] == 6) & (lengths >= ihl + 14) & (ihl + 14 <= width)
    ihl = np.where(ok, ihl, 20)  # keeps the gathers below inside the row; those rows are discarded anyway
    ack = _be32(rows, ihl + 8)
    flags = rows[np.arange(n), ihl + 13]
    is_ack = (flags & _TCP_ACK) != 0
    kind = np.where(is_ack & ((flags & _TCP_RST) != 0), RST,
                    np.where(is_ack & ((flags & _TCP_SYN) != 0), SYN_ACK, NO_ANSWER)).astype(np.uint8)
    kind[~ok] = NO_ANSWER
    src = _be32(rows, np.full(n, 12, dtype=np.intp))
    dst = _be32(rows, np.full(n, 16, dtype=np.intp))
    return ack - np.uint32(1), dst, src, kind  # the answer comes from the probe's destination


__all__ = ["tcp_syns", "parse_tcp_answers", "TCP_PACKET_LEN", "NO_ANSWER", "SYN_ACK", "RST", "OTHER", "EVIDENCE"]
