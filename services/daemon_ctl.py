"""Starting, reloading and stopping a lab's services process (`services.daemon`), by pid, only if ours.

The config carries a generation number; the daemon writes it to its status file once its sockets for that
config are open, so "reloaded" means DNS answers and gateways listen, not "a signal was sent".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from services import dns, egress
from topology import processes
from topology.names import LabPaths

MODULE = "services.daemon"
PROCESS = "services"
READY_TIMEOUT = 30.0  # a safety net for a stuck process, not a speed goal


class DaemonError(RuntimeError):
    pass


def config_file(paths: LabPaths) -> Path:
    return paths.config_file(f"{PROCESS}.json")


def status_file(paths: LabPaths) -> Path:
    return paths.config_file(f"{PROCESS}-status.json")


def _log_file(paths: LabPaths) -> Path:
    return paths.config_file(f"{PROCESS}.log")


def running_pid(paths: LabPaths) -> int | None:
    return processes.our_pid(paths.pid_file(PROCESS), str(config_file(paths)))


def read_status(paths: LabPaths) -> dict[str, Any] | None:
    try:
        return json.loads(status_file(paths).read_text())
    except (OSError, ValueError):
        return None


def current_config(paths: LabPaths) -> dict[str, Any] | None:
    try:
        return json.loads(config_file(paths).read_text())
    except (OSError, ValueError):
        return None


def apply_config(paths: LabPaths, dns_pods: list[str], records: dict[str, str],
                 gateways: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Make the daemon serve exactly this (starting it when needed, stopping it when there is nothing to
    serve). Returns its status, or None when nothing runs. Unchanged config: nothing happens."""
    wanted = {"dns": {"pods": sorted(dns_pods), "records": dict(sorted(records.items()))},
              "gateways": sorted(gateways, key=lambda g: (g["netns"], g["port"]))}
    old = current_config(paths)
    pid = running_pid(paths)
    if not dns_pods and not gateways:
        stop(paths)
        return None
    if pid is not None and old is not None and {k: old.get(k) for k in wanted} == wanted:
        return read_status(paths)
    generation = int((old or {}).get("generation", 0)) + 1
    path = config_file(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**wanted, "generation": generation}, indent=1))
    tmp.replace(path)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        return _wait(paths, pid, generation, None)
    argv = [*processes.python_module(), MODULE, "--config", str(path), "--pid-file", str(paths.pid_file(PROCESS)),
            "--status-file", str(status_file(paths))]
    with open(_log_file(paths), "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    return _wait(paths, proc.pid, generation, proc)


def _wait(paths: LabPaths, pid: int, generation: int, proc: subprocess.Popen[bytes] | None) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        status = read_status(paths)
        if status is not None and status.get("pid") == pid and status.get("generation", 0) >= generation:
            if status.get("failures"):
                raise DaemonError(f"services process could not open: {'; '.join(status['failures'][:5])}")
            return status
        if proc is not None and proc.poll() is not None:
            raise DaemonError(f"services process exited with {proc.returncode}; see {_log_file(paths)}")
        time.sleep(0.02)
    raise DaemonError(f"services process {pid} did not load its config within {READY_TIMEOUT:.0f} s")


def stop(paths: LabPaths) -> bool:
    pid = running_pid(paths)
    if pid is not None:
        processes.terminate([pid], 3.0)
    for path in (paths.pid_file(PROCESS), status_file(paths), config_file(paths)):
        path.unlink(missing_ok=True)
    return pid is not None


def served_by_daemon(namespace: str, labels: dict[str, str], port: int) -> bool:
    """Whether the services process serves this port of a pod (the responder then leaves it alone): every
    port of a gateway, 53 of a DNS pod."""
    return egress.is_gateway_pod(namespace, labels) or (dns.is_dns_pod(namespace, labels) and port == dns.DNS_PORT)
