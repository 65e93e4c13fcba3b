"""The fabric of a running lab: namespaces and pods (topology), speakers and reflectors (bgp), responders.

This is the only place where the lab's desired state meets the topology and BGP packages.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from ipaddress import IPv4Network

from bgp import bird, speaker
from bgp.sessions import plan_sessions
from lab.addresses import ipam_of
from lab.labfile import pod_instances
from lab.machines import holds_shared_nodes, machine_plan, peers_of
from lab.plan import plan_node_addresses_from_model
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from topology import names, responder_ctl, vxlan
from topology.engine import Progress
from topology.engines import get_engine
from topology.model import (
    NODE_IFNAME,
    POD_IFNAME,
    NodePlan,
    PodPlan,
    ServerPlan,
    TopologyPlan,
    plan_fabric,
    plan_node,
)
from topology.shaping import ShapedLink


class ConvergenceTimeout(RuntimeError):
    pass


def kernel_routes(netns: str) -> set[IPv4Network]:
    """Destinations of the routes in a namespace's main table (`default` left out)."""
    out = get_engine().run_in(netns, ["ip", "-j", "route", "show"])
    routes = set()
    for route in json.loads(out or "[]"):
        if route.get("dst", "default") != "default":
            routes.add(IPv4Network(route["dst"]))
    return routes


class Fabric:
    def __init__(self, runtime: "LabRuntime"):
        self.runtime = runtime
        self.lab = runtime.lab
        self.paths = runtime.paths
        self.engine = get_engine(runtime.spec.engine)

    # topology -------------------------------------------------------------------------------------
    def nodes(self) -> list[NodePlan]:
        return [
            plan_node(self.lab, n.name, n.kind, n.ip)  # type: ignore[arg-type]
            for n in plan_node_addresses_from_model(self.lab, self.runtime.spec)
        ]

    def local_nodes(self) -> list[NodePlan]:
        """The nodes this machine runs: its hosts, and the externals and reflectors on the first machine."""
        spec, machine = self.runtime.spec, self.runtime.machine
        local = set(self.runtime.local_hosts())
        shared = holds_shared_nodes(spec, machine)
        return [n for n in self.nodes() if n.name in local or (n.kind != "host" and shared)]

    def topology_plan(self, pods: Sequence[PodPlan] = ()) -> TopologyPlan:
        fabric = plan_fabric(self.lab, self.runtime.spec.fabric)
        machine = self.runtime.machine
        if machine is not None:  # one fabric per machine; the first one carries the gateway address
            fabric = dataclasses.replace(fabric, machine=machine,
                                         holds_gateway=holds_shared_nodes(self.runtime.spec, machine))
        return TopologyPlan(lab=self.lab, fabric=fabric, nodes=tuple(self.local_nodes()), pods=tuple(pods))

    def build_nodes(self, progress: Progress) -> None:
        plan = self.topology_plan()
        self.engine.build(plan, progress)
        machine = self.runtime.machine
        if machine is not None:
            spec = self.runtime.spec
            me = machine_plan(self.lab, spec, machine)
            vxlan.plug_underlay(me)
            vxlan.join_fabric(me, plan.fabric, [p.ip for p in peers_of(spec, machine)], plan.nodes)

    def add_pods(self, pods: Sequence[PodPlan], progress: Progress | None = None) -> None:
        self.engine.add_pods(pods, progress)

    def remove_pods(self, pods: Sequence[PodPlan]) -> None:
        self.engine.remove_pods(pods)

    # link shaping -------------------------------------------------------------------------------
    def shaped_links(self) -> list[ShapedLink]:
        """The lab file's `links` (nodes' fabric links) and pods' `link`, as veths with a shape."""
        spec = self.runtime.spec
        fabric = self.topology_plan().fabric
        nodes = {n.name: n for n in self.nodes()}
        links = [ShapedLink(f"fabric link of {ln.node}", nodes[ln.node].netns, NODE_IFNAME, fabric.netns,
                            nodes[ln.node].fabric_port, ln.shape()) for ln in spec.links]
        pod_shapes = {(p.namespace, name): p.link for p, name in pod_instances(spec) if p.link is not None}
        if pod_shapes:
            for pod in pod_plans(self.runtime):
                if (shape := pod_shapes.get((pod.namespace, pod.name))) is not None:
                    links.append(ShapedLink(f"link of pod {pod.key}", pod.host_netns, pod.host_ifname, pod.netns,
                                            POD_IFNAME, shape.shape()))
        return links

    def shape_links(self) -> str | None:
        """Apply every shape; returns the method used (netem or delayline), None when nothing is shaped."""
        from topology.link_shaper import LinkShaper

        return LinkShaper(self.paths, self.engine).apply(self.shaped_links())

    # bgp ------------------------------------------------------------------------------------------
    def announcements(self) -> dict[str, frozenset[IPv4Network]]:
        ipam = ipam_of(self.runtime)
        return {host: ipam.announcements(host) for host in self.runtime.host_names()}

    def speaker_plans(self):  # type: ignore[no-untyped-def]
        """The sessions of the whole lab, keeping the speakers and reflectors this machine runs."""
        bgp = self.runtime.spec.bgp
        plan = plan_sessions(self.nodes(), layout=bgp.layout, asn=bgp.asn, hold_time=bgp.holdTime)
        if self.runtime.machine is None:
            return plan
        local = {n.name for n in self.local_nodes()}
        return dataclasses.replace(plan, speakers=tuple(s for s in plan.speakers if s.name in local),
                                   reflectors=tuple(r for r in plan.reflectors if r.name in local))

    def start_bgp(self) -> None:
        plans = self.speaker_plans()
        for rr in plans.reflectors:
            bird.start_reflector(self.paths, rr)
        announcements = self.announcements()
        for sp in plans.speakers:
            speaker.set_announcements(self.paths, sp.name, announcements.get(sp.name, frozenset()), notify=False)
        speaker.start_speakers(self.paths, plans.speakers)

    def update_announcements(self, hosts: set[str] | None = None) -> None:
        local = set(self.runtime.local_hosts())
        for host, prefixes in self.announcements().items():
            if (hosts is None or host in hosts) and host in local:
                speaker.set_announcements(self.paths, host, prefixes)

    def missing_routes(self, from_hosts: set[str] | None = None) -> dict[str, list[str]]:
        """Per node of this machine, the announced prefixes of other hosts (of `from_hosts`, default all)
        not yet in its kernel (empty when converged)."""
        announcements = {h: p for h, p in self.announcements().items() if from_hosts is None or h in from_hosts}
        missing: dict[str, list[str]] = defaultdict(list)
        for node in self.local_nodes():
            if node.kind == "reflector":
                continue
            have = kernel_routes(node.netns)
            for host, prefixes in announcements.items():
                if host == node.name:
                    continue
                missing[node.name].extend(str(p) for p in prefixes if p not in have)
        return {k: v for k, v in missing.items() if v}

    def wait_converged(self, timeout: float, progress: Progress | None = None) -> float:
        """Polls every node's kernel until it has a route for every other host's prefixes."""
        started = time.monotonic()
        nodes = [n for n in self.local_nodes() if n.kind != "reflector"]
        # A machine coming up cannot wait for machines that are not up yet: it waits for its own hosts' routes.
        from_hosts = set(self.runtime.local_hosts()) if self.runtime.machine is not None else None
        while True:
            missing = self.missing_routes(from_hosts)
            if progress:
                progress(len(nodes) - len(missing), len(nodes), "nodes with every route")
            if not missing:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                sample = "; ".join(f"{n}: {', '.join(p[:3])}" for n, p in list(missing.items())[:5])
                raise ConvergenceTimeout(f"routes still missing after {timeout:.0f}s: {sample}")
            time.sleep(0.1)

    # responders -----------------------------------------------------------------------------------
    def start_responder(self, targets: Sequence[PodPlan | ServerPlan]) -> None:
        responder_ctl.start_responder(self.paths, targets)

    def reload_responder(self, targets: Sequence[PodPlan | ServerPlan]) -> None:
        responder_ctl.write_responder_pods(names.responder_pods_file(self.paths), targets)
        responder_ctl.reload_responder(self.paths)
