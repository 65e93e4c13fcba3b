"""A minimal nfnetlink_queue client: bind a queue, read packet ids, give verdicts (accept or drop).

Used by the delay line (delayline.py) where the kernel has no netem qdisc. Only packet metadata is asked
for (NFQNL_COPY_META): the verdict needs the packet id, never the payload. The message layouts are the
kernel's (include/uapi/linux/netfilter/nfnetlink_queue.h); the encoders and decoder are pure.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NF_DROP, NF_ACCEPT = 0, 1
AF_INET = 2
NLMSG_HDR = struct.Struct("=IHHII")
NFGEN_HDR = struct.Struct("!BBH")  # family, version, queue number (big-endian)


class NfqueueError(OSError):
    pass


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _message(msg: int, queue: int, attrs: bytes, seq: int, flags: int = NLM_F_REQUEST) -> bytes:
    body = NFGEN_HDR.pack(AF_INET, 0, queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), kind, flags, seq, 0) + body


def bind_messages(queue: int, maxlen: int, seq: int = 1) -> list[bytes]:
    """Pure: bind the queue for IPv4, ask for metadata only, and cap the queue (each one acknowledged)."""
    flags = NLM_F_REQUEST | NLM_F_ACK
    return [
        _message(NFQNL_MSG_CONFIG, queue, _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, AF_INET)),
                 seq, flags),
        _message(NFQNL_MSG_CONFIG, queue, _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)),
                 seq + 1, flags),
        _message(NFQNL_MSG_CONFIG, queue, _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)), seq + 2, flags),
    ]  # fmt: skip


def verdict_message(queue: int, packet_id: int, verdict: int) -> bytes:
    """Pure: the verdict for one packet."""
    return _message(NFQNL_MSG_VERDICT, queue, _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id)), 0)


def parse(data: bytes) -> Iterator[tuple[str, int]]:
    """Pure: ('packet', id) for each queued packet and ('error', errno) for each non-zero netlink error."""
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size:
            break
        body = offset + NLMSG_HDR.size
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, body)
            if code:
                yield "error", -code
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            attr = body + NFGEN_HDR.size
            while attr + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, attr)
                if alen < 4:
                    break
                if atype & 0x7FFF == NFQA_PACKET_HDR:
                    yield "packet", struct.unpack_from("!I", data, attr + 4)[0]
                attr += alen + (-alen % 4)
        offset += length + (-length % 4)


class QueueSocket:
    """One bound queue. Open it inside the namespace whose packets it takes (netns.entered)."""

    def __init__(self, queue: int, maxlen: int = 4096) -> None:
        self.queue = queue
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, 0))
        for message in bind_messages(queue, maxlen):
            self.sock.send(message)
            for kind, value in parse(self.sock.recv(65536)):
                if kind == "error":
                    raise NfqueueError(value, f"binding nfqueue {queue}: {os.strerror(value)}")
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def packet_ids(self) -> list[int]:
        """Ids of the packets waiting now (non-blocking)."""
        ids: list[int] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return ids
            ids += [value for kind, value in parse(data) if kind == "packet"]

    def verdict(self, packet_id: int, verdict: int) -> None:
        self.sock.send(verdict_message(self.queue, packet_id, verdict))

    def close(self) -> None:
        self.sock.close()
