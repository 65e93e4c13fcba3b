"""Open sockets inside a network namespace without moving the process.

A socket stays bound to the namespace it was created in, so a short-lived thread enters the namespace
(setns applies to the calling thread only), creates the sockets and hands them back. The process and every
other thread stay where they were.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

T = TypeVar("T")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def netns_path(netns: str) -> str:
    return netns if netns.startswith("/") else os.path.join(NETNS_RUN_DIR, netns)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def call_in_netns(netns: str, make: Callable[[], T]) -> T:
    """Run `make()` in a thread that has entered `netns` (a name under /run/netns or a path)."""
    path = netns_path(netns)
    outcome: dict[str, object] = {}

    def worker() -> None:
        try:
            _setns(path)
            outcome["value"] = make()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=worker, name=f"setns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


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


def open_sockets(netns: str, sender: bool, protocols: tuple[int, ...]
                 ) -> tuple[socket.socket | None, list[socket.socket]]:
    """A sender (if asked) and one receiver per protocol, all made in one visit to the namespace."""
    return call_in_netns(netns, lambda: (_raw_sender() if sender else None, [_raw_receiver(p) for p in protocols]))
