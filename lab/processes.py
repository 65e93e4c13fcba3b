"""Ending the lab's processes, by pid only, and only when the pid is provably ours.

A pid is ours when a pid file in the lab's run directory names it and the process command line still
mentions the lab (pids get reused), or when the process lives in one of the lab's network namespaces.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:
        return state.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def pids_from_files(run_dir: Path, marker: str) -> list[int]:
    """Pids named by `*.pid` files in run_dir whose process command line contains `marker`."""
    pids = []
    for pid_file in sorted(run_dir.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if alive(pid) and marker in _cmdline(pid):
            pids.append(pid)
    return pids


def pids_in_netns(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def terminate(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL what is still there after `grace` seconds."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
