"""The Mininet engine (`engine: mininet`): hosts, externals, reflectors and pods are Mininet hosts, the
fabric a Mininet LinuxBridge, with no OpenFlow controller; then the same plumbing as the netns engine.

Each node is made the way Mininet makes one (`Mininet.addHost`: an `mnexec -cdn bash` shell in a new
network namespace; the fabric `addSwitch(cls=LinuxBridge, inNamespace=True)`, whose `start()` creates
the bridge with brctl inside the fabric's own namespace), and then named as the lab names it with
`ip netns attach <name> <shell pid>` (the trick Docker pods use too). From there the netns engine's
plumbing runs unchanged: Calico veths straight into the named namespaces, proxy ARP, routes; ExaBGP per
host and nftables come after, as on any lab.

Safety: nothing lands in the root namespace (no switch, no veth: the bridge lives in the fabric
namespace); every shell is named `mininet:<prefix>-<lab>-…`, and is ended by this engine by its pid as
soon as its namespace is named (the bind mount keeps the namespace alive, and a lab must outlive the
`lab up` process); `lab down` deletes the lab's namespaces by name like the netns engine. Mininet's
machine-wide clean-up (`mn -c`, `mininet.clean`) and its init that raises root sysctls are never run.
`lab cli` shows a Mininet lab (any lab) as Mininet nodes again (topology/mininet_cli.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from topology import batch, netns
from topology.engine import NetnsEngine, TopologyError
from topology.mininet_lib import load_mininet
from topology.model import FabricPlan, NodePlan, PodPlan, TopologyPlan
from topology.rtnl import RtnlSocket

FABRIC_DPID = "1"  # a LinuxBridge forwards on its own; Mininet only wants some datapath id
SHELLS_AT_ONCE = 100  # each live shell holds a pty and two fds: bounded well under the default fd limit


class MininetEngine(NetnsEngine):
    """Namespaces from Mininet nodes; everything else as NetnsEngine does it."""

    def _new_fabric_lines(self, plan: TopologyPlan) -> list[str]:
        mininet = load_mininet()
        net = _empty_net(mininet)
        made: list[tuple[str, Any]] = []
        # LinuxBridge.setup() warns about the root namespace's bridge-nf-call-* sysctls: noise here, the
        # bridge lives in the fabric namespace exactly as the netns engine's does.
        with _quiet(mininet):
            made.append((plan.fabric.netns, net.addSwitch(plan.fabric.bridge, cls=mininet.nodelib.LinuxBridge,
                                                          inNamespace=True, dpid=FABRIC_DPID)))
        try:
            made[0][1].start([])  # brctl addbr inside the fabric's namespace: the bridge is its first link
            made += [(node.netns, net.addHost(node.netns)) for node in plan.nodes]
            _attach(made)
            _check_bridge(plan.fabric.netns, plan.fabric.bridge)
        finally:
            _end_shells(node for _, node in made)
        return batch.node_veths(plan.fabric, plan.nodes)

    def _new_node_lines(self, fabric: FabricPlan, nodes: Sequence[NodePlan]) -> list[str]:
        _make_hosts([node.netns for node in nodes])  # an external server added to the running lab
        return batch.node_veths(fabric, nodes)

    def _new_pod_lines(self, pods: Sequence[PodPlan]) -> list[str]:
        _make_hosts([p.netns for p in pods if p.container is None])  # a Docker pod's is its container's
        return batch.pod_lines(pods, new_namespaces=False)


def _make_hosts(netns_names: Sequence[str]) -> None:
    """A Mininet host per name, its namespace named so, its shell ended: SHELLS_AT_ONCE at a time."""
    if not netns_names:
        return
    net = _empty_net(load_mininet())
    for start in range(0, len(netns_names), SHELLS_AT_ONCE):
        made: list[tuple[str, Any]] = []
        try:
            made += [(name, net.addHost(name)) for name in netns_names[start : start + SHELLS_AT_ONCE]]
            _attach(made)
        finally:
            _end_shells(node for _, node in made)


def _empty_net(mininet: Any) -> Any:
    """A Mininet with no topology, no controller and Linux bridges: nodes are added one by one."""
    return mininet.net.Mininet(topo=None, build=False, controller=None, switch=mininet.nodelib.LinuxBridge,
                               autoSetMacs=False, autoStaticArp=False)


@contextlib.contextmanager
def _quiet(mininet: Any) -> Iterator[None]:
    """Mininet's warnings off for a moment (its logger is process-wide: `lab cli` output goes through it)."""
    level = mininet.log.lg.level
    mininet.log.lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        mininet.log.lg.setLevel(level)


def _attach(made: Sequence[tuple[str, Any]]) -> None:
    """Give each node's namespace the lab's name (one `ip -batch` for all of them)."""
    netns.run_ip_batch([batch.netns_attach(name, node.pid) for name, node in made])


def _check_bridge(fabric_netns: str, bridge: str) -> None:
    """The plumbing addresses the bridge by index 2 (as the netns engine creates it): make sure it is."""
    with netns.entered(fabric_netns), RtnlSocket() as sock:
        index = sock.link_indexes().get(bridge)
    if index != batch.BRIDGE_INDEX:
        raise TopologyError(f"Mininet's LinuxBridge {bridge!r} got ifindex {index}, not {batch.BRIDGE_INDEX}")


def _end_shells(nodes: Any) -> None:
    """End the shells this process started (SIGHUP to each one's own process group, then reaped)."""
    for node in nodes:
        node.terminate()
