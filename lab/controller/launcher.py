"""Start, stop, find and ask the controller of a lab (what the CLI uses).

The controller is detached (its own session, stdio to `controller.log` in the run directory), so a
Ctrl-C in the terminal that ran `lab up` does not stop it. Its pid file counts only while the process
runs our module for this lab's run directory: pids are reused.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from lab.controller.files import log_file, pid_file, socket_file
from lab.controller.protocol import ControllerUnavailable, request
from lab.stores import store_exists
from topology import processes
from topology.names import LabPaths

MODULE = "lab.controller"
START_TIMEOUT = 60.0  # the first pass builds the world: about a second at bank scale
DEFAULT_WAIT = 120.0


class ControllerError(RuntimeError):
    """The controller could not be started, or a write was not programmed in time."""


def marker(paths: LabPaths) -> str:
    return f"--run-dir {paths.run_dir}"


def running_pid(paths: LabPaths) -> int | None:
    pid = processes.our_pid(pid_file(paths), marker(paths))
    return pid if pid is not None and MODULE in processes.argv(pid) else None


def start(paths: LabPaths, resync: float = 1.0) -> int:
    """Start the lab's controller unless one runs; returns its pid once it answers on its socket."""
    pid = running_pid(paths)
    if pid is not None:
        return pid
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    argv = [*processes.python_module(), MODULE, "--lab", paths.lab, "--run-dir", str(paths.run_dir),
            "--resync", str(resync)]
    with open(log_file(paths), "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if (pid := running_pid(paths)) is not None:  # another command started it first
                return pid
            raise ControllerError(f"the controller of lab {paths.lab!r} exited with {proc.returncode}: "
                                  f"see {log_file(paths)}")
        try:
            request(socket_file(paths), {"op": "ping"}, timeout=2.0)
            return proc.pid
        except ControllerUnavailable:
            time.sleep(0.05)
    raise ControllerError(f"the controller of lab {paths.lab!r} did not answer within {START_TIMEOUT:.0f} s")


def resync_interval(paths: LabPaths) -> float:
    """The interval the lab was brought up with (kept in the store's meta by `lab up`)."""
    from lab.stores import open_store

    with open_store(paths) as store:
        return float(store.get_meta("resync_interval", 1.0))


def ensure_running(paths: LabPaths) -> int | None:
    """Start the controller again if it died; returns the new pid, None when it was running."""
    if running_pid(paths) is not None or not store_exists(paths):
        return None
    return start(paths, resync_interval(paths))


def stop(paths: LabPaths) -> bool:
    """Stop the lab's controller (by its pid, only if it is ours); True when one was running."""
    pid = running_pid(paths)
    if pid is not None:
        processes.terminate([pid], grace=5.0)
    pid_file(paths).unlink(missing_ok=True)
    return pid is not None


def ask(paths: LabPaths, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    return request(socket_file(paths), message, timeout)


def warm_read(paths: LabPaths, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any] | None:
    """A read answered from the controller's memory; None when no controller answers (the caller says so
    and reads the store itself)."""
    if running_pid(paths) is None:
        return None
    try:
        return ask(paths, message, timeout)
    except ControllerUnavailable:
        return None


def down_note(paths: LabPaths) -> str:
    return f"note: the controller of lab {paths.lab} does not answer: read from the store instead (cold)"


def wait_programmed(paths: LabPaths, revision: int, timeout: float = DEFAULT_WAIT) -> None:
    """Until the controller reports `revision` programmed on every host; ControllerError naming the host
    and the reason when it does not happen within `timeout`."""
    try:
        answer = ask(paths, {"op": "wait", "revision": revision, "timeout": timeout}, timeout=timeout + 10)
    except ControllerUnavailable as exc:
        raise ControllerError(f"revision {revision} committed, but not confirmed programmed: {exc}") from None
    if not answer.get("ok"):
        raise ControllerError(f"revision {revision} committed, not programmed within {timeout:.0f} s: "
                              f"{answer.get('error')}")
