"""Pods as Docker containers, plumbed the way a CNI plugin does it.

A container starts with network `none` (only `lo`); its network namespace is then named with the pod's
namespace name (`ip netns attach`), so everything after that — the veth, the /32, the route via
169.254.1.1, the filters, the responder, probes — treats it exactly like a netns pod. Removing a container
and then the name lets the namespace (and with it the veth) go. Containers carry labels with the lab's
prefix and name: clean-up selects by them and touches no other container.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from topology import names
from topology.docker_daemon import (
    LABEL_LAB,
    LABEL_NETNS,
    LABEL_POD,
    LABEL_PREFIX,
    DockerDaemon,
    DockerError,
    say,
)
from topology.docker_images import DEFAULT_IMAGE, IDLE_COMMAND, ensure_default_image, has_image
from topology.model import PodPlan

if TYPE_CHECKING:
    import docker


def container_labels(lab: str, pod: PodPlan) -> dict[str, str]:
    return {LABEL_PREFIX: names.PREFIX, LABEL_LAB: lab, LABEL_POD: pod.key, LABEL_NETNS: pod.netns}


def lab_filter(lab: str) -> dict[str, Any]:
    return {"label": [f"{LABEL_PREFIX}={names.PREFIX}", f"{LABEL_LAB}={lab}"]}


class ContainerPods:
    """Starts, finds and removes the containers of container pods (`PodPlan.container` set)."""

    def __init__(self, daemon: DockerDaemon | None = None, notify: Callable[[str], None] = say) -> None:
        self.daemon = daemon or DockerDaemon()
        self.notify = notify

    def _client(self) -> "docker.DockerClient":
        self.daemon.ensure_running(self.notify)
        return self.daemon.client()

    def start(self, lab: str, pods: Sequence[PodPlan]) -> None:
        """Every image is checked before the first container starts; a failure leaves the started ones for
        the caller's clean-up (remove)."""
        client = self._client()
        try:
            self._check_images(client, pods)
            for pod in pods:
                self._start_one(client, lab, pod)
        finally:
            client.close()

    def prepare(self, pods: Sequence[PodPlan]) -> None:
        """Before anything of a lab is built: the daemon runs, the default image exists, every other image
        is present locally. Does nothing for a lab without container pods."""
        if not any(p.container is not None for p in pods):
            return
        client = self._client()
        try:
            self._check_images(client, pods)
        finally:
            client.close()

    def _check_images(self, client: "docker.DockerClient", pods: Sequence[PodPlan]) -> None:
        images = {p.container.image for p in pods if p.container is not None}
        if DEFAULT_IMAGE in images:
            ensure_default_image(client)
        missing = sorted(i for i in images - {DEFAULT_IMAGE} if not has_image(client, i))
        if missing:
            users = {i: sorted(p.key for p in pods if p.container and p.container.image == i) for i in missing}
            detail = "; ".join(f"image {i!r} of pods {', '.join(users[i])}" for i in missing)
            raise DockerError(
                f"{detail}: not in the lab's Docker daemon, and the lab never pulls. "
                f"Load it first: {' '.join(self.daemon.cli('load', '-i', 'IMAGE.tar'))}"
            )

    def _start_one(self, client: "docker.DockerClient", lab: str, pod: PodPlan) -> None:
        assert pod.container is not None
        command = pod.container.command
        if command is None and pod.container.image == DEFAULT_IMAGE:
            command = IDLE_COMMAND
        # create + start, never `run`: docker-py's run pulls a missing image.
        container = client.containers.create(
            pod.container.image, list(command) if command is not None else None, name=pod.netns,
            hostname=pod.name[:63], network_mode="none", labels=container_labels(lab, pod), detach=True,
        )  # fmt: skip
        container.start()
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        if not container.attrs["State"]["Running"] or pid <= 0:
            logs = container.logs(tail=5).decode(errors="replace").strip()
            raise DockerError(f"pod {pod.key}: its container exited at once "
                              f"(status {container.attrs['State']['ExitCode']}): {logs}")
        attach = subprocess.run(["ip", "netns", "attach", pod.netns, str(pid)], capture_output=True, text=True)
        if attach.returncode != 0:
            raise DockerError(f"pod {pod.key}: cannot name the container's namespace {pod.netns}: "
                              f"{attach.stderr.strip()}")

    def remove(self, pods: Sequence[PodPlan]) -> None:
        """Remove the containers of these pods (missing ones are fine); their namespace names stay for the
        caller to delete."""
        wanted = {p.netns for p in pods if p.container is not None}
        if not wanted or not self.daemon.running():
            return
        client = self.daemon.client()
        try:
            for container in client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}={names.PREFIX}"}):
                if container.labels.get(LABEL_NETNS) in wanted:
                    container.remove(force=True)
        finally:
            client.close()

    def remove_lab(self, lab: str) -> list[str]:
        """Remove every container of the lab (by its labels); the names of their namespaces stay for the
        engine's destroy, which deletes all of the lab's."""
        if not self.daemon.running():
            return []
        client = self.daemon.client()
        removed = []
        try:
            for container in client.containers.list(all=True, filters=lab_filter(lab)):
                removed.append(container.name)
                container.remove(force=True)
        finally:
            client.close()
        return removed

    def container_of(self, netns_name: str) -> str | None:
        """The name of the running container behind a lab namespace, if it is one."""
        if not self.daemon.running():
            return None
        client = self.daemon.client()
        try:
            found = client.containers.list(filters={"label": [f"{LABEL_PREFIX}={names.PREFIX}",
                                                              f"{LABEL_NETNS}={netns_name}"]})
            return found[0].name if found else None
        finally:
            client.close()

    def exec_argv(self, container: str, argv: Sequence[str], interactive: bool = False) -> list[str]:
        """docker exec inside the container (its own file system and tools), e.g. for `lab exec`."""
        flags = ["-i"] if interactive else []
        return self.daemon.cli("exec", *flags, container, *argv)


def stop_daemon_if_idle() -> None:
    """After a lab went down: stop the lab's dockerd if nothing of this prefix runs in it any more."""
    with contextlib.suppress(DockerError, OSError):
        DockerDaemon().stop_if_idle()
