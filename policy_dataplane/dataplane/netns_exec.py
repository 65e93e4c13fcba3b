"""Run a command inside a network namespace, cheaply: fork, setns(2) to the namespace, exec.

`ip netns exec` also remounts /sys and costs a few ms per call; the dataplane runs `nft` on every change,
so it enters the namespace itself (only the network namespace matters to nft, iptables and ipset).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Callable
from typing import TypeVar

from topology.netns import entered

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class CommandFailed(RuntimeError):
    """A command in a namespace exited non-zero; `stderr` says why (nft names the failing line)."""

    def __init__(self, netns: str, argv: list[str], stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} in {netns} failed: {stderr.strip()[:2000]}")
        self.netns, self.argv, self.stderr = netns, argv, stderr


def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


def netns_path(netns: str) -> str:
    return netns if netns.startswith("/") else os.path.join(NETNS_RUN_DIR, netns)


def start_in_netns(netns: str, argv: list[str], **popen: object) -> subprocess.Popen[str]:
    path = netns_path(netns)
    if not os.path.exists(path):
        raise FileNotFoundError(f"network namespace {netns} does not exist")
    return subprocess.Popen(argv, preexec_fn=lambda: _enter(path), text=True, **popen)  # type: ignore[call-overload]


def run_in_netns(netns: str, argv: list[str], stdin: str | None = None, check: bool = True) -> str:
    """Run to completion; returns stdout. Raises CommandFailed when `check` and the exit status is not 0."""
    proc = start_in_netns(netns, argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(stdin)
    if check and proc.returncode != 0:
        raise CommandFailed(netns, argv, err)
    return out


def finish(netns: str, argv: list[str], proc: subprocess.Popen[str], stdin: str | None) -> str:
    """Second half of a started command (lets callers start one per host, then wait for all)."""
    out, err = proc.communicate(stdin)
    if proc.returncode != 0:
        raise CommandFailed(netns, argv, err)
    return out


def call_in_netns(netns: str, make: Callable[[], T]) -> T:
    """Run `make()` inside `netns` (this thread only; sockets made there stay in that namespace)."""
    with entered(netns):
        return make()
