"""Controlling a lab's responder process: its pods file, start, reload, stop (by pid, only if ours).

The responder (`python -m topology.responder`) writes a status file after every (re)load; callers wait
for that file to change instead of sleeping, so "started" and "reloaded" mean the sockets are open.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from topology import names, processes

MODULE = "topology.responder"
READY_TIMEOUT = 60.0  # generous: a safety net for a stuck responder, not a speed goal
STOP_GRACE = 3.0


class ResponderError(RuntimeError):
    pass


class HasPorts(Protocol):
    """Anything with a namespace and declared ports: pods, and externals that should answer too."""

    @property
    def netns(self) -> str: ...

    @property
    def ports(self) -> Sequence[object]: ...


class PortEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    port: int
    protocol: str


class TargetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str
    netns: str
    ports: tuple[PortEntry, ...]


class PodsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    targets: tuple[TargetEntry, ...]


class Status(BaseModel):
    model_config = ConfigDict(frozen=True)
    pid: int
    generation: int
    listening: int
    skipped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def render_pods_file(pods: Sequence[HasPorts]) -> str:
    targets = []
    for pod in pods:
        key = getattr(pod, "key", pod.netns)
        ports = [PortEntry(port=p.port, protocol=p.protocol) for p in pod.ports]  # type: ignore[attr-defined]
        targets.append(TargetEntry(key=key, netns=pod.netns, ports=tuple(ports)))
    return PodsFile(targets=tuple(targets)).model_dump_json(indent=1)


def write_responder_pods(path: Path, pods: Sequence[HasPorts]) -> None:
    _atomic_write(Path(path), render_pods_file(pods))


def read_responder_pods(path: Path) -> PodsFile:
    return PodsFile.model_validate_json(Path(path).read_text())


def write_status(path: Path, status: Status) -> None:
    _atomic_write(path, status.model_dump_json())


def read_status(paths: names.LabPaths) -> Status | None:
    try:
        return Status.model_validate_json(names.responder_status_file(paths).read_text())
    except (OSError, ValueError):
        return None


def is_our_responder(pid: int, lab: str) -> bool:
    """Pids get reused: only a live process running our module for this lab counts."""
    argv = processes.argv(pid)
    if MODULE not in argv or "--lab" not in argv:
        return False
    i = argv.index("--lab")
    return i + 1 < len(argv) and argv[i + 1] == lab and processes.running(pid)


def running_pid(paths: names.LabPaths) -> int | None:
    pid = processes.read_pid(names.responder_pid_file(paths))
    return pid if pid is not None and is_our_responder(pid, paths.lab) else None


def _wait_for_generation(paths: names.LabPaths, pid: int, above: int, proc: subprocess.Popen[bytes] | None) -> Status:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        status = read_status(paths)
        if status is not None and status.pid == pid and status.generation > above:
            return status
        if proc is not None and proc.poll() is not None:
            raise ResponderError(f"responder exited with {proc.returncode}; see {_log_file(paths)}")
        if proc is None and not processes.running(pid):
            raise ResponderError(f"responder {pid} died; see {_log_file(paths)}")
        time.sleep(0.02)
    raise ResponderError(f"responder {pid} did not load its pods within {READY_TIMEOUT:.0f} s")


def _log_file(paths: names.LabPaths) -> Path:
    return paths.config_file(f"{names.RESPONDER_PROCESS}.log")


def start_responder(paths: names.LabPaths, pods: Sequence[HasPorts]) -> int:
    """Start the lab's responder (or reload the running one) and return its pid once its sockets are open."""
    write_responder_pods(names.responder_pods_file(paths), pods)
    pid = running_pid(paths)
    if pid is not None:
        reload_responder(paths)
        return pid
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        *processes.python_module(), MODULE, "--lab", paths.lab,
        "--pods-file", str(names.responder_pods_file(paths)),
        "--pid-file", str(names.responder_pid_file(paths)),
        "--status-file", str(names.responder_status_file(paths)),
    ]  # fmt: skip
    with open(_log_file(paths), "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    _wait_for_generation(paths, proc.pid, 0, proc)
    return proc.pid


def reload_responder(paths: names.LabPaths) -> Status:
    """SIGHUP: the responder re-reads its pods file; returns once the new sockets are open."""
    pid = running_pid(paths)
    if pid is None:
        raise ResponderError(f"no responder is running for lab {paths.lab!r}")
    status = read_status(paths)
    before = status.generation if status is not None and status.pid == pid else 0
    os.kill(pid, signal.SIGHUP)
    return _wait_for_generation(paths, pid, before, None)


def stop_responder(paths: names.LabPaths) -> bool:
    """Stop the lab's responder if the pid file names our process; True if one was stopped."""
    pid = running_pid(paths)
    if pid is not None:
        processes.terminate([pid], STOP_GRACE)
    for path in (names.responder_pid_file(paths), names.responder_status_file(paths)):
        path.unlink(missing_ok=True)
    return pid is not None
