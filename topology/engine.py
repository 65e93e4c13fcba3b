"""The topology seam (the `Engine` protocol) and the netns engine, which builds a
topology plan out of named network namespaces, veths and one bridge.

Every other package enters a namespace only through an engine: `entered` / `call_in` (this thread, for
sockets), `start_in` / `run_in` (a process inside: ExaBGP, BIRD, nft, ipset, iptables), `exec_in` (a
user's command, `lab exec`). Engines are looked up by name in
`topology/engines.py`: a new engine is its module plus one `register_engine` line there.

Two phases per batch of namespaces: one `ip -batch` process creates the namespaces and their veths
(each created directly in its namespaces), then this thread enters each namespace once with setns, writes
its namespace-wide sysctls and opens a netlink socket there, and plumbs it with batched rtnetlink
requests. It returns only once every new veth is operationally up. No process per pod, nothing in the
root namespace.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from topology import batch, names, netns, plumbing, rtnl, sysctl
from topology.docker_engine import ContainerPods
from topology.model import NODE_IFNAME, POD_IFNAME, FabricPlan, NodePlan, PodPlan, TopologyPlan
from topology.responder_ctl import stop_responder
from topology.rtnl import RtnlError, RtnlSocket
from topology.sockets import NetlinkPool
from topology.validation import PlanError, check_new_pods, check_plan

Progress = Callable[[int, int, str], None]  # (done, total, what): every long step of every package reports so
T = TypeVar("T")

# How long remove_pods lets the kernel tear down deleted pod namespaces before deleting veths itself.
REMOVE_GRACE_FIXED = 1.0
REMOVE_GRACE_PER_POD = 0.01


class TopologyError(RuntimeError):
    pass


def _no_progress(done: int, total: int, what: str) -> None:
    pass


def lab_of_netns(name: str) -> str:
    """`npl-<lab>-…` to `<lab>` (lab names hold no dash)."""
    parts = name.split("-", 2)
    if len(parts) < 3 or parts[0] != names.PREFIX:
        raise TopologyError(f"{name!r} is not a lab namespace")
    return parts[1]


NODES_CREATED, NODES_PLUMBED = "creating fabric and nodes", "plumbing fabric and nodes"
PODS_CREATED, PODS_PLUMBED = "creating pod namespaces", "plumbing pods"


class _Tracker:
    """Counts namespaces created and plumbed, phase by phase, for the caller's progress bars."""

    def __init__(self, totals: dict[str, int], progress: Progress | None) -> None:
        self.totals, self.progress = totals, progress or _no_progress
        self.done = dict.fromkeys(totals, 0)

    def step(self, count: int, what: str) -> None:
        self.done[what] += count
        self.progress(self.done[what], self.totals[what], what)


def _pod_links(pods: Sequence[PodPlan]) -> dict[str, list[str]]:
    """Both ends of every pod's veth, by namespace (host namespaces first: one dump covers many pods)."""
    links: dict[str, list[str]] = defaultdict(list)
    for pod in pods:
        links[pod.host_netns].append(pod.host_ifname)
    for pod in pods:
        links[pod.netns].append(POD_IFNAME)
    return links


class Engine(Protocol):
    """What the lab needs from a topology engine (netns here; Docker or Mininet ones can stand in).
    Namespaces are named as `topology.names` says, whatever the engine."""

    # nodes and pods
    def build(self, plan: TopologyPlan, progress: Progress | None = None) -> None: ...
    def add_pods(self, pods: Sequence[PodPlan], progress: Progress | None = None) -> None: ...
    def remove_pods(self, pods: Sequence[PodPlan]) -> None: ...
    def add_nodes(self, fabric: FabricPlan, nodes: Sequence[NodePlan]) -> None: ...
    def remove_nodes(self, nodes: Sequence[NodePlan]) -> None: ...
    def destroy(self, lab: str) -> list[str]: ...
    def prepare_pods(self, pods: Sequence[PodPlan]) -> None: ...  # before anything is built (Docker images)
    def stop_pods(self, lab: str) -> None: ...  # pods run by a runtime of their own (Docker), before a sweep
    def list_owned(self, lab: str) -> list[str]: ...

    # entering a namespace
    def entered(self, name: str) -> AbstractContextManager[None]: ...
    def call_in(self, name: str, make: Callable[[], T]) -> T: ...
    def start_in(self, name: str, argv: Sequence[str], **popen: object) -> subprocess.Popen[str]: ...
    def run_in(self, name: str, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str: ...
    def exec_in(
        self, name: str, argv: Sequence[str], *, capture: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]: ...


class NetnsEngine:
    """Engine for named network namespaces (`/run/netns/npl-<lab>-…`)."""

    def __init__(self, chunk: int = 250, static_neighbours: bool = True) -> None:
        self.chunk = chunk  # pods per `ip -batch` run; smaller chunks give a smoother progress bar
        self.static_neighbours = static_neighbours  # see plumbing.py: ARP table limits at scale
        self.containers = ContainerPods()  # pods with `container` set run in Docker (docker_engine.py)

    # -- reading ---------------------------------------------------------------------------------------
    def list_owned(self, lab: str) -> list[str]:
        return netns.list_netns(names.lab_netns_prefix(names.check_lab_name(lab)))

    def prepare_pods(self, pods: Sequence[PodPlan]) -> None:
        """Before anything of a lab is built: the lab's dockerd and the images of its Docker pods, if any."""
        self.containers.prepare(pods)

    def stop_pods(self, lab: str) -> None:
        """Remove the lab's Docker pods by label, before `lab down` signals the processes in its namespaces."""
        self.containers.remove_lab(lab)

    # -- entering ----------------------------------------------------------------------------------------
    def entered(self, name: str) -> AbstractContextManager[None]:
        return netns.entered(name)

    def call_in(self, name: str, make: Callable[[], T]) -> T:
        return netns.call_in(name, make)

    def start_in(self, name: str, argv: Sequence[str], **popen: object) -> subprocess.Popen[str]:
        return netns.start_in(name, argv, **popen)

    def run_in(self, name: str, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
        return netns.run_in(name, argv, stdin, check)

    def exec_in(
        self, name: str, argv: Sequence[str], *, capture: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a lab namespace (for `lab exec`); stdio is captured unless capture=False.
        A container pod's command runs inside its container (its own tools and files)."""
        lab_of_netns(name)
        if not netns.exists(name):
            raise TopologyError(f"network namespace {name!r} does not exist")
        container = self.containers.container_of(name)
        if container is not None:
            argv = self.containers.exec_argv(container, argv, interactive=not capture)
            return subprocess.run(argv, capture_output=capture, text=True, timeout=timeout)
        return netns.exec_interactive(name, argv, capture=capture, timeout=timeout)

    # -- building --------------------------------------------------------------------------------------
    def build(self, plan: TopologyPlan, progress: Progress | None = None) -> None:
        """Create the whole topology; on any failure remove everything of the lab again and re-raise."""
        check_plan(plan)
        existing = self.list_owned(plan.lab)
        if plan.fabric.machine is not None:  # a lab on several machines: the others' namespaces may exist
            existing = sorted(set(existing) & _planned_netns(plan))
        if existing:
            raise TopologyError(f"lab {plan.lab!r} already has namespaces ({existing[0]}, ...): bring it down first")
        nodes, pods = 1 + len(plan.nodes), len(plan.pods)
        tracker = _Tracker({NODES_CREATED: nodes, NODES_PLUMBED: nodes, PODS_CREATED: pods, PODS_PLUMBED: pods},
                           progress)
        try:
            self._build_fabric(plan, tracker)
            self._add_pods(plan.pods, tracker)
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                if plan.fabric.machine is None:
                    self.destroy(plan.lab)
                else:  # only this machine's part
                    netns.run_ip_batch(batch.netns_delete(sorted(_planned_netns(plan) & set(self.list_owned(plan.lab)))),
                                       force=True)
            raise

    # Where the namespaces come from: `ip netns add` here; the Mininet engine makes Mininet nodes instead
    # and names their namespaces, and everything after is the same plumbing.
    def _new_fabric_lines(self, plan: TopologyPlan) -> list[str]:
        """`ip -batch` lines for the fabric and node namespaces, the bridge and the node veths."""
        return batch.fabric_lines(plan.fabric, plan.nodes)

    def _new_node_lines(self, fabric: FabricPlan, nodes: Sequence[NodePlan]) -> list[str]:
        """`ip -batch` lines for nodes added to a running fabric (an external server): namespaces, veths."""
        return batch.node_lines(fabric, nodes)

    def _new_pod_lines(self, pods: Sequence[PodPlan]) -> list[str]:
        """`ip -batch` lines for the pods' namespaces (not a container's: Docker made it) and veths."""
        return batch.pod_lines(pods)

    def _build_fabric(self, plan: TopologyPlan, tracker: _Tracker) -> None:
        netns.run_ip_batch(self._new_fabric_lines(plan))
        tracker.step(1 + len(plan.nodes), NODES_CREATED)
        fabric = plan.fabric
        with NetlinkPool() as pool:
            for node in plan.nodes:
                pool.plumb(node.netns, plumbing.node_settings(node), plumbing.node_requests(node, fabric))
            pool.plumb(fabric.netns, plumbing.fabric_settings(), plumbing.fabric_requests(fabric, plan.nodes))
            targets = {n.netns: [NODE_IFNAME] for n in plan.nodes}
            pool.wait_until_up({fabric.netns: [n.fabric_port for n in plan.nodes], **targets})
        tracker.step(1 + len(plan.nodes), NODES_PLUMBED)

    def add_nodes(self, fabric: FabricPlan, nodes: Sequence[NodePlan]) -> None:
        """Add nodes (an external server) to a running lab's fabric; on failure they are removed again."""
        taken = set(self.list_owned(lab_of_netns(fabric.netns)))
        if clash := [n.netns for n in nodes if n.netns in taken]:
            raise TopologyError(f"namespaces already exist: {clash}")
        try:
            netns.run_ip_batch(self._new_node_lines(fabric, nodes))
            with NetlinkPool() as pool:
                for node in nodes:
                    pool.plumb(node.netns, plumbing.node_settings(node), plumbing.node_requests(node, fabric))
                pool.plumb(fabric.netns, (), plumbing.fabric_port_requests(nodes))
                pool.wait_until_up({fabric.netns: [n.fabric_port for n in nodes], **{n.netns: [NODE_IFNAME] for n in nodes}})
        except BaseException:
            with contextlib.suppress(Exception):
                self.remove_nodes(nodes)
            raise

    def remove_nodes(self, nodes: Sequence[NodePlan]) -> None:
        """Remove nodes (missing ones are fine): their namespaces, and with them their veths to the fabric."""
        netns.run_ip_batch(batch.netns_delete(n.netns for n in nodes if netns.exists(n.netns)), force=True)
        if left := [n.netns for n in nodes if netns.exists(n.netns)]:
            raise TopologyError(f"could not remove nodes: {left} still exist")

    def add_pods(self, pods: Sequence[PodPlan], progress: Progress | None = None) -> None:
        """Add pods to a running lab; on failure the pods of this call are removed again."""
        if not pods:
            return
        labs = {lab_of_netns(p.netns) for p in pods}
        if len(labs) != 1:
            raise PlanError([f"pods of several labs in one call: {sorted(labs)}"])
        (lab,) = labs
        check_new_pods(lab, pods, self.list_owned(lab))
        try:
            self._add_pods(pods, _Tracker({PODS_CREATED: len(pods), PODS_PLUMBED: len(pods)}, progress))
        except BaseException:
            with contextlib.suppress(Exception):
                self.remove_pods(pods)
            raise

    def _add_pods(self, pods: Sequence[PodPlan], tracker: _Tracker) -> None:
        # Sequential on purpose: creating links in another process while this one plumbs was measured no
        # faster, both wait for the kernel's rtnl lock.
        for start in range(0, len(pods), self.chunk):
            chunk = pods[start : start + self.chunk]
            if in_containers := [p for p in chunk if p.container is not None]:
                self.containers.start(lab_of_netns(chunk[0].netns), in_containers)
            netns.run_ip_batch(self._new_pod_lines(chunk))
            tracker.step(len(chunk), PODS_CREATED)
            with NetlinkPool() as pool:
                for pod in chunk:
                    pool.plumb(pod.netns, sysctl.COMMON, plumbing.pod_requests(pod, self.static_neighbours))
                self._plumb_hosts(pool, chunk)
                pool.wait_until_up(_pod_links(chunk))
            tracker.step(len(chunk), PODS_PLUMBED)

    def _plumb_hosts(self, pool: NetlinkPool, pods: Sequence[PodPlan]) -> None:
        by_host: dict[str, list[PodPlan]] = defaultdict(list)
        for pod in pods:
            by_host[pod.host_netns].append(pod)
        for host_netns, host_pods in by_host.items():
            sock = pool.get(host_netns)
            sock.transact(plumbing.host_pod_requests(host_pods, sock.link_indexes(), self.static_neighbours))

    # -- removing --------------------------------------------------------------------------------------
    def remove_pods(self, pods: Sequence[PodPlan]) -> None:
        """Remove pods (missing ones are fine); returns once their host-side veths and /32 routes are gone,
        so the same pod can come back at once.

        The pod namespaces go first: the kernel then tears their veths down in batches (~4 ms a pod),
        where deleting each host end ourselves costs ~19 ms a pod (one RCU grace period each). A host end
        still there after the kernel's expected time (its namespace kept alive, e.g. by a socket the
        responder holds: reload the responder first) is deleted directly.
        """
        self.containers.remove(pods)
        netns.run_ip_batch(batch.netns_delete(p.netns for p in pods if netns.exists(p.netns)), force=True)
        by_host: dict[str, set[str]] = defaultdict(set)
        for pod in pods:
            by_host[pod.host_netns].add(pod.host_ifname)
        deadline = time.monotonic() + REMOVE_GRACE_FIXED + REMOVE_GRACE_PER_POD * len(pods)
        failures: list[str] = []
        for host_netns, ifnames in by_host.items():
            if not netns.exists(host_netns):
                continue
            with self.entered(host_netns), RtnlSocket() as sock:
                while (left := ifnames & sock.link_indexes().keys()) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if left:
                    with contextlib.suppress(RtnlError):  # some may vanish meanwhile: judged below
                        sock.transact([rtnl.link_delete(name) for name in sorted(left)])
                    failures += [f"{name} in {host_netns}" for name in sorted(ifnames & sock.link_indexes().keys())]
        left_ns = [p.netns for p in pods if netns.exists(p.netns)]
        if failures or left_ns:
            raise TopologyError(f"could not remove pods: {[f'{n} still exists' for n in failures + left_ns]}")

    def destroy(self, lab: str) -> list[str]:
        """Remove every namespace of the lab (veths and the bridge die with them); return their names.

        The lab's responder is stopped first: its sockets would keep the pod namespaces alive.
        """
        try:
            stop_responder(names.LabPaths.for_lab(lab))
        except OSError:
            pass  # no run directory: nothing was started
        self.containers.remove_lab(lab)
        owned = self.list_owned(lab)
        netns.run_ip_batch(batch.netns_delete(owned), force=True)
        left = self.list_owned(lab)
        if left:
            raise TopologyError(f"namespaces of lab {lab!r} could not be removed: {left}")
        return owned


def _planned_netns(plan: TopologyPlan) -> set[str]:
    return {plan.fabric.netns, *(n.netns for n in plan.nodes), *(p.netns for p in plan.pods)}


__all__ = ["Engine", "NetnsEngine", "Progress", "TopologyError", "lab_of_netns"]
