"""Named network namespaces: list them, enter them, start processes in them, and run `ip -batch` scripts.

The netns engine's primitives: `topology.engine.NetnsEngine` exposes them, and the rest of the code enters
a namespace only through an engine. Entering with setns(2) changes only the calling thread's namespace;
sockets opened and /proc/sys/net files written while inside stay bound to that namespace. That lets one
thread configure 1500 namespaces without starting a process per namespace (docs/ARCHITECTURE.md, "Entering
a namespace"). A process is started inside by a setns(2) between fork and exec: cheaper than `ip netns
exec` (which also remounts /sys, a few ms per call), and only the network namespace matters to nft,
iptables, ipset, ExaBGP and BIRD. Interactive commands (`lab exec`) still go through `ip netns exec`, so
that /sys and /etc/netns match the namespace for whatever the user runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from topology.kernel_text import batch_lines

T = TypeVar("T")

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NetnsError(RuntimeError):
    pass


class CommandFailed(RuntimeError):
    """A command in a namespace exited non-zero; `stderr` says why (nft names the failing line)."""

    def __init__(self, netns: str, argv: Sequence[str], stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} in {netns} failed: {stderr.strip()[:2000]}")
        self.netns, self.argv, self.stderr = netns, list(argv), stderr


def netns_path(name: str) -> Path:
    """A name under /run/netns, or an absolute path to a namespace file as it is."""
    return Path(name) if name.startswith("/") else NETNS_RUN_DIR / name


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


def call_in(name: str, make: Callable[[], T]) -> T:
    """Run `make()` inside namespace `name` (this thread only, then back): what it opens stays bound there."""
    with entered(name):
        return make()


def _enter_in_child(path: str) -> None:
    """Between fork and exec: nothing but the syscall (no Python-level locks in a forked child)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
    finally:
        os.close(fd)


def start_in(name: str, argv: Sequence[str], **popen: object) -> subprocess.Popen[str]:
    """Start `argv` inside namespace `name` (text mode; Popen keywords as given)."""
    path = str(netns_path(name))
    if not os.path.exists(path):
        raise FileNotFoundError(f"network namespace {name} does not exist")
    return subprocess.Popen(list(argv), preexec_fn=lambda: _enter_in_child(path), text=True,
                            **popen)  # type: ignore[call-overload]


def finish(name: str, argv: Sequence[str], proc: subprocess.Popen[str], stdin: str | None) -> str:
    """Second half of a started command (lets callers start one per namespace, then wait for all)."""
    out, err = proc.communicate(stdin)
    if proc.returncode != 0:
        raise CommandFailed(name, argv, err)
    return out


def run_in(name: str, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run to completion inside `name`; returns stdout. Raises CommandFailed when `check` and it fails."""
    proc = start_in(name, argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(stdin)
    if check and proc.returncode != 0:
        raise CommandFailed(name, argv, err)
    return out


def exec_interactive(name: str, argv: Sequence[str], *, capture: bool = True,
                     timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """A user's command inside `name`, through `ip netns exec` (its /sys and /etc/netns follow the namespace)."""
    return subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=capture, text=True, timeout=timeout)


def run_ip_batch(lines: Sequence[str], *, force: bool = False) -> None:
    """One `ip -batch -` for many commands; raises with ip's own messages when any line fails."""
    if not lines:
        return
    lines = batch_lines(lines)  # a line break inside a line would be a second, unintended command
    argv = ["ip", "-force", "-batch", "-"] if force else ["ip", "-batch", "-"]
    done = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if done.returncode != 0 and not force:
        raise NetnsError(f"ip -batch failed: {done.stderr.strip() or done.stdout.strip()}")
