"""Real kernel TCP reachability from inside a namespace: accepted or refused counts as reached."""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Mapping, Sequence

from topology import netns


def tcp_reach(src_netns: str, targets: Sequence[tuple[str, int]], timeout: float = 3.0) -> dict[tuple[str, int], bool]:
    """Connects to every target at once from `src_netns`; True where the SYN got an answer (SYN-ACK or RST)."""
    outcomes = tcp_outcomes(src_netns, targets, timeout)
    return {t: outcome in ("accepted", "refused") for t, outcome in outcomes.items()}


def tcp_outcomes(src_netns: str, targets: Sequence[tuple[str, int]], timeout: float = 3.0) -> dict[tuple[str, int], str]:
    """Connects to every target at once from `src_netns`: "accepted", "refused" or "no answer" for each."""
    return tcp_outcomes_from({src_netns: targets}, timeout)[src_netns]


def tcp_outcomes_from(sources: Mapping[str, Sequence[tuple[str, int]]], timeout: float = 3.0
                      ) -> dict[str, dict[tuple[str, int], str]]:
    """Connects from every source namespace to each of its targets, all at once (one deadline for all)."""
    socks: dict[socket.socket, tuple[str, tuple[str, int]]] = {}
    for src_netns, targets in sources.items():
        with netns.entered(src_netns):
            for target in targets:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.connect_ex(target)
                socks[s] = (src_netns, target)
    result = {src: {t: "no answer" for t in targets} for src, targets in sources.items()}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # type: ignore[union-attr]
            src, target = socks[s]  # type: ignore[index]
            result[src][target] = {0: "accepted", errno.ECONNREFUSED: "refused"}.get(err, "no answer")
            sel.unregister(s)
            pending -= 1
    for s in socks:
        s.close()
    return result
