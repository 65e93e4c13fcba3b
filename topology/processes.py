"""The lab's processes: found by pid files or by network namespace, ended by pid, only when provably ours.

A pid is ours when its command line still contains a marker we chose (a config path in the lab's run
directory, the lab's name): pids are reused, so a stale pid file never gets a stranger killed. A process
living in one of the lab's network namespaces is ours too: only the lab starts processes there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def python_module(python: str | None = None) -> list[str]:
    """The argv prefix that runs a module of the lab (the words after it: module, then its arguments) with
    this interpreter, hence from the installed package. -P keeps the working directory off sys.path, so a
    daemon started from inside a checkout never imports the checkout's copy instead."""
    return [python or sys.executable, "-P", "-m"]


def argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return []


def cmdline(pid: int) -> str:
    return " ".join(argv(pid))


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


def pids_from_files(run_dir: Path, marker: str) -> list[int]:
    """Pids named by `*.pid` files in run_dir whose process runs with `marker` in its command line."""
    return [pid for pid_file in sorted(run_dir.glob("*.pid")) if (pid := our_pid(pid_file, marker)) is not None]


def pids_in_netns(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


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


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def terminate(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM all, then SIGKILL what is still there after `grace` seconds."""
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in pids:
        if not wait_gone(pid, max(0.0, deadline - time.monotonic())):
            _kill(pid, signal.SIGKILL)
            wait_gone(pid, 2.0)
        _reap(pid)


def stop_ours(pid_file: Path, marker: str, grace: float = 3.0) -> bool:
    """SIGTERM the process named by pid_file (if ours), SIGKILL after `grace` s; remove the pid file.
    True when a process was stopped."""
    pid = our_pid(pid_file, marker)
    if pid is not None:
        terminate([pid], grace)
    pid_file.unlink(missing_ok=True)
    return pid is not None
