"""Real kernel TCP reachability from inside a namespace: accepted or refused counts as reached."""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Sequence

from topology import netns


def tcp_reach(src_netns: str, targets: Sequence[tuple[str, int]], timeout: float = 3.0) -> dict[tuple[str, int], bool]:
    """Connects to every target at once from `src_netns`; True where the SYN got an answer (SYN-ACK or RST)."""
    outcomes = tcp_outcomes(src_netns, targets, timeout)
    return {t: outcome in ("accepted", "refused") for t, outcome in outcomes.items()}


def tcp_outcomes(src_netns: str, targets: Sequence[tuple[str, int]], timeout: float = 3.0) -> dict[tuple[str, int], str]:
    """Connects to every target at once from `src_netns`: "accepted", "refused" or "no answer" for each."""
    socks: dict[socket.socket, tuple[str, int]] = {}
    with netns.entered(src_netns):
        for target in targets:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.connect_ex(target)
            socks[s] = target
    result = {t: "no answer" for t in targets}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # type: ignore[union-attr]
            outcome = {0: "accepted", errno.ECONNREFUSED: "refused"}.get(err, "no answer")
            result[socks[s]] = outcome  # type: ignore[index]
            sel.unregister(s)
            pending -= 1
    for s in socks:
        s.close()
    return result
