"""Named network namespaces: list them, enter them in-process, and run `ip -batch` scripts.

Entering with setns(2) changes only the calling thread's namespace; sockets opened and /proc/sys/net files
written while inside stay bound to that namespace. That lets one thread configure 1500 namespaces without
starting a process per namespace (DESIGN.md section 5).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from topology.kernel_text import batch_lines

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NetnsError(RuntimeError):
    pass


def netns_path(name: str) -> Path:
    return NETNS_RUN_DIR / name


def list_netns(prefix: str = "") -> list[str]:
    """Names of the named namespaces (files under /run/netns) starting with prefix, sorted."""
    try:
        entries = os.listdir(NETNS_RUN_DIR)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if e.startswith(prefix))


def exists(name: str) -> bool:
    return netns_path(name).exists()


def identity(name: str) -> int | None:
    """The namespace's nsfs inode: a namespace deleted and created again under one name gets a new one."""
    try:
        return os.stat(netns_path(name)).st_ino
    except FileNotFoundError:
        return None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(err)}")


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body inside namespace `name` (this thread only), then come back, even on error."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetnsError(f"network namespace {name!r} does not exist") from None
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def run_ip_batch(lines: Sequence[str], *, force: bool = False) -> None:
    """One `ip -batch -` for many commands; raises with ip's own messages when any line fails."""
    if not lines:
        return
    lines = batch_lines(lines)  # a line break inside a line would be a second, unintended command
    argv = ["ip", "-force", "-batch", "-"] if force else ["ip", "-batch", "-"]
    done = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if done.returncode != 0 and not force:
        raise NetnsError(f"ip -batch failed: {done.stderr.strip() or done.stdout.strip()}")
