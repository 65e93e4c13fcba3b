"""The lab's own Docker daemon: started on demand, with flags that leave the machine's networking alone.

Pods run in netpol-lab's own `dockerd`, not in the machine's: its socket, pid file, exec root (and so its
managed containerd) and data root live in netpol-lab's folders, one daemon per lab prefix, so it never
disturbs another dockerd and parallel test runs never share containers. Flags: no iptables rules, no
docker0 bridge, no ip_forward change, no masquerading; containers start with network `none` and the lab
plumbs them itself. NETPOL_LAB_DOCKER_HOST points the lab at a daemon someone else runs instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from topology import names, processes

if TYPE_CHECKING:
    import docker

DOCKER_HOST_ENV = "NETPOL_LAB_DOCKER_HOST"
DAEMON_RUN_ROOT = Path("/run/netpol-lab")
DAEMON_STATE_ROOT = Path("/var/lib/netpol-lab")
START_TIMEOUT = 60.0
STOP_GRACE = 15.0

# Labels on every container the lab starts: `lab down` selects by them and by nothing else.
LABEL_PREFIX = "netpol-lab.prefix"
LABEL_LAB = "netpol-lab.lab"
LABEL_POD = "netpol-lab.pod"
LABEL_NETNS = "netpol-lab.netns"


class DockerError(RuntimeError):
    pass


def say(message: str) -> None:
    """Messages to the user go to stderr: stdout may carry JSON."""
    print(f"netpol-lab: {message}", file=sys.stderr)


@dataclass(frozen=True)
class DaemonPaths:
    run_dir: Path
    data_root: Path

    @classmethod
    def for_prefix(cls, prefix: str | None = None) -> "DaemonPaths":
        prefix = prefix or names.PREFIX
        return cls(DAEMON_RUN_ROOT / f"docker-{prefix}", DAEMON_STATE_ROOT / f"docker-{prefix}")

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "dockerd.pid"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def log(self) -> Path:
        return self.run_dir / "dockerd.log"


def dockerd_argv(paths: DaemonPaths) -> list[str]:
    """Pure: the daemon's command line. Each networking flag turns off one thing dockerd would otherwise
    do to the root namespace (iptables/ip6tables rules, the docker0 bridge, ip_forward=1, NAT)."""
    return [
        "dockerd",
        "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false", "--ip-masq=false",
        "--host", f"unix://{paths.socket}",
        "--pidfile", str(paths.pid_file),
        "--exec-root", str(paths.exec_root),
        "--data-root", str(paths.data_root),
    ]  # fmt: skip


class DockerDaemon:
    """Finds, starts and stops the lab's dockerd; hands out SDK clients and CLI arguments for it."""

    def __init__(self, paths: DaemonPaths | None = None) -> None:
        self.paths = paths or DaemonPaths.for_prefix()
        self.external = os.environ.get(DOCKER_HOST_ENV)

    @property
    def url(self) -> str:
        return self.external or f"unix://{self.paths.socket}"

    def cli(self, *args: str) -> list[str]:
        """argv of the docker CLI talking to this daemon."""
        return ["docker", "--host", self.url, *args]

    def client(self) -> "docker.DockerClient":
        import docker

        return docker.DockerClient(base_url=self.url, timeout=120)

    def running(self) -> bool:
        if not self.external and not self.paths.socket.exists():
            return False
        try:
            client = self.client()
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:  # any failure to answer means: not usable
            return False

    def _our_pid(self) -> int | None:
        return processes.our_pid(self.paths.pid_file, marker=str(self.paths.socket))

    def ensure_running(self, notify: Callable[[str], None] = say) -> None:
        """Start the lab's dockerd if it does not answer yet (with a message saying so)."""
        if self.running():
            return
        if self.external:
            raise DockerError(f"{DOCKER_HOST_ENV}={self.external}: no Docker daemon answers there")
        if self._our_pid() is not None:
            self._wait_until_up()  # started by another process a moment ago
            return
        notify(f"starting netpol-lab's Docker daemon (socket {self.paths.socket}, networking left alone; "
               f"log {self.paths.log})")
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self.paths.data_root.mkdir(parents=True, exist_ok=True)
        with open(self.paths.log, "ab") as log:
            try:
                subprocess.Popen(dockerd_argv(self.paths), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
            except FileNotFoundError:
                raise DockerError("dockerd is not installed: run scripts/bootstrap (Debian's docker.io)") from None
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self.running():
            if time.monotonic() > deadline:
                tail = self.paths.log.read_text(errors="replace").splitlines()[-5:] if self.paths.log.exists() else []
                raise DockerError(f"the lab's dockerd did not answer within {START_TIMEOUT:.0f}s: " + " | ".join(tail))
            time.sleep(0.2)

    def stop_if_idle(self) -> bool:
        """Stop the daemon when this prefix started it and none of its containers is left. True if stopped."""
        if self.external or self._our_pid() is None:
            return False
        if self.running():
            client = self.client()
            try:
                if client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}={names.PREFIX}"}):
                    return False
            finally:
                client.close()
        return processes.stop_ours(self.paths.pid_file, marker=str(self.paths.socket), grace=STOP_GRACE)
