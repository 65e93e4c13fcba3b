"""A throwaway Calico-plumbed lab without BGP, for traffic's and the dataplane's own tests and benchmarks.

Built by the topology engine like any lab (fabric bridge, hosts, pods plumbed the Calico way, ICMP rate
limits lifted); instead of BGP, each host gets a static route to every other host's pod block, and a
blackhole for its own (unused addresses there die on the host, as in Calico). No IPAM:
host i owns one /20 of 10.64.0.0/12 (the benchmarks put 750 pods on a host). Names come from
topology.names, so `down()` (or a lab's `--force` clean-up) finds everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from topology import rtnl
from topology.docker_images import DEFAULT_IMAGE
from topology.engine import Engine
from topology.engines import DEFAULT_ENGINE, get_engine
from topology.model import (
    NODE_IFNAME,
    ContainerPlan,
    NodePlan,
    PodPlan,
    TopologyPlan,
    plan_fabric,
    plan_node,
    plan_pod,
)
from topology.rtnl import RtnlSocket
from traffic.model import ProbeEndpoint

POD_POOL = IPv4Network("10.64.0.0/12")
HOST_BLOCK_PREFIX = 20  # one block per host, up to 4094 pods
FABRIC = IPv4Network("10.99.0.0/24")


@dataclass(frozen=True)
class ScratchLab:
    """`pods_per_host[i]` pods on host `h{i+1}`; pods named `ns{j % namespaces}/p{k}`."""

    lab: str
    pods_per_host: tuple[int, ...] = (3, 1)
    namespaces: int = 2
    engine_name: str = DEFAULT_ENGINE
    runtime: str = "netns"  # or "docker": every pod a container of the default image (responder-style idle)
    endpoints: list[ProbeEndpoint] = field(default_factory=list, compare=False)

    def host_name(self, index: int) -> str:
        return f"h{index + 1}"

    def host_netns(self, index: int) -> str:
        return self.plan_host(index).netns

    def block(self, index: int) -> IPv4Network:
        size = 1 << (32 - HOST_BLOCK_PREFIX)
        return IPv4Network((int(POD_POOL.network_address) + index * size, HOST_BLOCK_PREFIX))

    def host_ip(self, index: int) -> IPv4Address:
        return FABRIC.network_address + 1 + index

    def pods(self) -> list[tuple[int, str, str, IPv4Address]]:
        """(host index, namespace, pod, ip) for every pod."""
        out = []
        counter = 0
        for host, count in enumerate(self.pods_per_host):
            block = self.block(host)
            if count > block.num_addresses - 3:
                raise ValueError(f"{count} pods do not fit in host block {block}")
            for k in range(count):
                out.append((host, f"ns{counter % self.namespaces}", f"p{counter}", block.network_address + 2 + k))
                counter += 1
        return out

    def probe_endpoints(self) -> list[ProbeEndpoint]:
        pods = [
            ProbeEndpoint(f"{ns}/{pod}", self.plan_pod(h, ns, pod, ip).netns, ip, "pod", ns, self.host_name(h))
            for h, ns, pod, ip in self.pods()
        ]
        hosts = [
            ProbeEndpoint(self.host_name(i), self.host_netns(i), self.host_ip(i), "host", None, self.host_name(i))
            for i in range(len(self.pods_per_host))
        ]
        return pods + hosts

    # plans ---------------------------------------------------------------------------------------------
    def plan_host(self, index: int) -> NodePlan:
        return plan_node(self.lab, self.host_name(index), "host",
                         IPv4Interface(f"{self.host_ip(index)}/{FABRIC.prefixlen}"))

    def plan_pod(self, host: int, namespace: str, pod: str, ip: IPv4Address) -> PodPlan:
        container = ContainerPlan(DEFAULT_IMAGE, responder=True) if self.runtime == "docker" else None
        return plan_pod(self.lab, namespace, pod, self.host_name(host), ip, container=container)

    def plan(self) -> TopologyPlan:
        hosts = tuple(self.plan_host(i) for i in range(len(self.pods_per_host)))
        pods = tuple(self.plan_pod(h, ns, pod, ip) for h, ns, pod, ip in self.pods())
        return TopologyPlan(lab=self.lab, fabric=plan_fabric(self.lab, FABRIC), nodes=hosts, pods=pods)

    def static_routes(self) -> dict[int, list[tuple[IPv4Network, IPv4Address]]]:
        """For each host: (another host's block, that host's fabric address), standing in for BGP."""
        hosts = range(len(self.pods_per_host))
        return {i: [(self.block(j), self.host_ip(j)) for j in hosts if j != i] for i in hosts}

    # side effects --------------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        return get_engine(self.engine_name)

    def up(self) -> list[ProbeEndpoint]:
        engine = self.engine
        engine.prepare_pods(self.plan().pods)
        engine.build(self.plan())
        for host, routes in self.static_routes().items():
            with engine.entered(self.host_netns(host)), RtnlSocket() as sock:
                uplink = sock.link_indexes()[NODE_IFNAME]
                sock.transact([rtnl.route_add(self.block(host), blackhole=True)]  # as Calico: own block
                              + [rtnl.route_add(block, gateway=via, oif=uplink) for block, via in routes])
        self.endpoints[:] = self.probe_endpoints()
        return list(self.endpoints)

    def add_pod(self, host: int, ns_name: str, pod: str, ip: IPv4Address) -> ProbeEndpoint:
        """Create one more pod on a running scratch lab (e.g. the "new pod" of a policy-latency run)."""
        plan = self.plan_pod(host, ns_name, pod, ip)
        self.engine.add_pods([plan])
        return ProbeEndpoint(f"{ns_name}/{pod}", plan.netns, ip, "pod", ns_name, self.host_name(host))

    def remove_pod(self, host: int, ns_name: str, pod: str) -> None:
        """Delete a pod: its namespace, veth and the host's /32 route."""
        self.engine.remove_pods([self.plan_pod(host, ns_name, pod, IPv4Address(0))])

    def down(self) -> None:
        """Delete every namespace of this lab that exists (safe to call after a failed `up`)."""
        self.engine.destroy(self.lab)
