"""Set element updates over nf_tables netlink, without starting `nft` (the common change: a label moves a
pod into or out of selector sets). One batch = one kernel transaction, like `nft -f`, but with no process
start and no ruleset cache read (docs/ARCHITECTURE.md, Costs: each `nft` first reads the whole ruleset).

Only what the dataplane needs: add / delete IPv4 elements of interval sets (`type ipv4_addr; flags
interval`) in table `inet npl`. The kernel stores an interval [a, b] as a start element `a` and an end
element `b + 1` flagged INTERVAL_END, exactly what nft sends. `encode_batch` is pure (bytes, tested against
nft's own result in the integration tests); `NftSocket` keeps one netlink socket per host namespace.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from policy_dataplane.dataplane.backend import ApplyRefused
from policy_dataplane.dataplane.hostprogram import TABLE
from topology.engine import Engine
from topology.engines import get_engine

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFT_MSG_NEWGEN, NFT_MSG_GETGEN = 15, 16  # the answer to a GETGEN is a NEWGEN
NFTA_GEN_ID = 1
NFPROTO_INET = 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x1, 0x4, 0x400
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_FLAGS = 1, 3
NFTA_DATA_VALUE = 1
NFT_SET_ELEM_INTERVAL_END = 1


@dataclass(frozen=True)
class ElementChange:
    set_name: str
    add: bool  # False: delete
    ranges: tuple[tuple[int, int], ...]  # (first, last) addresses as integers, as the interval set holds them


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _nested(kind: int, *children: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(children))


def _message(kind: int, flags: int, seq: int, family: int, res_id: int, body: bytes) -> bytes:
    nfgen = struct.pack("=BBH", family, 0, socket.htons(res_id))
    payload = nfgen + body
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload


def interval_elements(first: int, last: int) -> list[bytes]:
    """An address range as the kernel's interval elements: start key, then end key (one past the last)
    flagged."""
    start = struct.pack("!I", first)
    elements = [_nested(NFTA_LIST_ELEM, _nested(NFTA_SET_ELEM_KEY, _attr(NFTA_DATA_VALUE, start)))]
    if last < 0xFFFFFFFF:  # the end of the address space has no end element
        end = struct.pack("!I", last + 1)
        elements.append(_nested(NFTA_LIST_ELEM, _nested(NFTA_SET_ELEM_KEY, _attr(NFTA_DATA_VALUE, end)),
                                _attr(NFTA_SET_ELEM_FLAGS, struct.pack("!I", NFT_SET_ELEM_INTERVAL_END))))
    return elements


def encode_batch(changes: Sequence[ElementChange], first_seq: int = 1) -> tuple[bytes, int]:
    """(bytes of one batch, number of messages the kernel acknowledges)."""
    seq = first_seq
    out = [_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES, b"")]
    acked = 0
    for change in changes:
        elements = [e for first, last in change.ranges for e in interval_elements(first, last)]
        if not elements:
            continue
        seq += 1
        kind = (NFNL_SUBSYS_NFTABLES << 8) | (NFT_MSG_NEWSETELEM if change.add else NFT_MSG_DELSETELEM)
        flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE if change.add else 0)
        body = (_attr(NFTA_SET_ELEM_LIST_TABLE, TABLE.encode() + b"\0")
                + _attr(NFTA_SET_ELEM_LIST_SET, change.set_name.encode() + b"\0")
                + _nested(NFTA_SET_ELEM_LIST_ELEMENTS, *elements))
        out.append(_message(kind, flags, seq, NFPROTO_INET, 0, body))
        acked += 1
    seq += 1
    out.append(_message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES, b""))
    return b"".join(out), acked


class NetlinkRefused(ApplyRefused):
    def __init__(self, netns: str, errno_: int) -> None:
        super().__init__(f"nf_tables refused the element batch in {netns}: {os.strerror(errno_)}")
        self.errno = errno_


class NftSocket:
    """A netlink socket inside one host namespace (opened once, reused for every change)."""

    def __init__(self, netns: str, engine: Engine | None = None) -> None:
        self.netns = netns
        self.sock = (engine or get_engine()).call_in(
            netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER))
        self.sock.bind((0, 0))
        self._seq = 1

    def close(self) -> None:
        self.sock.close()

    def send(self, changes: Sequence[ElementChange]) -> None:
        """Send one batch; returns after the kernel answered every message (raises if any failed: then the
        whole batch was rolled back)."""
        data, acked = encode_batch(changes, self._seq)
        self._seq += acked + 2
        if not acked:
            return
        self.sock.send(data)
        first_error = 0
        while acked:  # every message is answered (ack or error), even after a failure
            reply = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(reply) and acked:
                length, kind = struct.unpack_from("=IH", reply, offset)
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", reply, offset + 16)
                    first_error = first_error or -code
                    acked -= 1
                offset += max(16, (length + 3) & ~3)
        if first_error:
            raise NetlinkRefused(self.netns, first_error)


def generation_request(seq: int) -> bytes:
    kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN
    return _message(kind, NLM_F_REQUEST, seq, socket.AF_UNSPEC, 0, b"")


def parse_generation(reply: bytes, seq: int) -> int | None:
    """NFTA_GEN_ID of the answer to `generation_request(seq)` in a datagram (None: not in it)."""
    offset = 0
    while offset + 16 <= len(reply):
        length, kind, _flags, msg_seq = struct.unpack_from("=IHHI", reply, offset)
        if length < 16:
            return None
        if msg_seq == seq and kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
            attrs, end = offset + 20, offset + length  # past the netlink and nfgenmsg headers
            while attrs + 4 <= end:
                attr_len, attr_kind = struct.unpack_from("=HH", reply, attrs)
                if attr_len < 4:
                    break
                if attr_kind & 0x3FFF == NFTA_GEN_ID:
                    return int(struct.unpack_from("!I", reply, attrs + 4)[0])
                attrs += (attr_len + 3) & ~3
        offset += (length + 3) & ~3
    return None


class GenerationSocket:
    """Reads a namespace's nf_tables ruleset generation (it goes up by one with every committed change):
    one request of 20 bytes on a socket opened once inside the namespace. pyroute2 takes ~0.4 ms a read,
    and the controller reads every host's generation around each write."""

    def __init__(self, netns: str, engine: Engine | None = None) -> None:
        self.sock = (engine or get_engine()).call_in(
            netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER))
        self.sock.bind((0, 0))
        self.sock.settimeout(2.0)  # the kernel answers at once; a socket.timeout (an OSError) if it never does
        self._seq = 0

    def read(self) -> int | None:
        self._seq += 1
        self.sock.send(generation_request(self._seq))
        while True:
            reply = self.sock.recv(65536)
            found = parse_generation(reply, self._seq)
            if found is not None:
                return found
            if _is_error(reply, self._seq):
                return None

    def close(self) -> None:
        self.sock.close()


def _is_error(reply: bytes, seq: int) -> bool:
    return len(reply) >= 16 and struct.unpack_from("=IHHI", reply)[1] == NLMSG_ERROR \
        and struct.unpack_from("=IHHI", reply)[3] == seq


__all__ = ["ElementChange", "GenerationSocket", "NftSocket", "NetlinkRefused", "encode_batch", "interval_elements",
           "generation_request", "parse_generation"]
