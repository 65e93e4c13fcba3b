"""Open probe sockets inside a network namespace without moving the process.

A socket stays bound to the namespace it was created in, so the calling thread enters the namespace
(setns applies to that thread only), creates the sockets and comes back with them.
"""

from __future__ import annotations

import socket

from topology.engine import Engine
from topology.engines import get_engine

RCVBUF_BYTES = 16 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # not exported by Python 3.11


def _raw_sender() -> socket.socket:
    """IPPROTO_RAW implies IP_HDRINCL: our header (with the endpoint's own /32 as source) goes out as built,
    routed by the namespace's kernel; the kernel fills the IP checksum and length."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, RCVBUF_BYTES)
    sock.setblocking(False)
    return sock


def _raw_receiver(protocol: int) -> socket.socket:
    """A raw socket sees a copy of every incoming IPv4 packet of `protocol` for this namespace, IP header
    included, with a kernel receive timestamp."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    return sock


def open_sockets(netns: str, sender: bool, protocols: tuple[int, ...], engine: Engine | None = None
                 ) -> tuple[socket.socket | None, list[socket.socket]]:
    """A sender (if asked) and one receiver per protocol, all made in one visit to the namespace."""
    return (engine or get_engine()).call_in(
        netns, lambda: (_raw_sender() if sender else None, [_raw_receiver(p) for p in protocols]))
