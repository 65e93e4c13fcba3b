"""Checksums done by hand so a probe costs a few integer operations, not a Scapy build.

The Internet checksum is a one's-complement sum, so a template's fixed words are summed once and only the
words a probe changes (addresses, ports, sequence or id) are added per probe. SCTP's CRC32c is not additive;
it is computed over the 32-byte INIT with a table (SCTP probes are rare next to TCP ones).
"""

from __future__ import annotations

import struct


def ones_sum(data: bytes) -> int:
    """Unfolded sum of the big-endian 16-bit words of `data` (odd length padded with a zero byte)."""
    if len(data) % 2:
        data = data + b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def finish(total: int) -> int:
    """Fold an unfolded one's-complement sum to 16 bits and complement it: the value to put on the wire."""
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def internet_checksum(data: bytes) -> int:
    return finish(ones_sum(data))


def _crc32c_table() -> tuple[int, ...]:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32c as SCTP puts it on the wire (RFC 9260 appendix A): pack the result little-endian."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return ~crc & 0xFFFFFFFF
