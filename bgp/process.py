"""Processes the BGP package starts, known by pid files and ended by pid, only when provably ours.

A pid is ours when its command line still contains a marker we chose (a config path in the lab's run
directory): pids are reused, so a stale pid file never gets a stranger killed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[1][:1] not in ("Z", "X")


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def our_pid(pid_file: Path, marker: str) -> int | None:
    """The pid in pid_file if that process runs and its command line contains marker."""
    pid = read_pid(pid_file)
    if pid is not None and running(pid) and marker in cmdline(pid):
        return pid
    return None


def signal_ours(pid_file: Path, marker: str, signum: int) -> bool:
    pid = our_pid(pid_file, marker)
    if pid is None:
        return False
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our child (else it would linger as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while running(pid):
        _reap(pid)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop_ours(pid_file: Path, marker: str, grace: float = 3.0) -> bool:
    """SIGTERM the process named by pid_file (if ours), SIGKILL after `grace` s; remove the pid file.
    True when a process was stopped."""
    pid = our_pid(pid_file, marker)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, grace):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_gone(pid, 2.0)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    return pid is not None
