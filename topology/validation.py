"""Checks a topology plan before anything is created: every mistake at once, each naming its object.

Pure: the engine calls `check_plan` / `check_new_pods` and creates nothing when they raise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address
from typing import TypeVar

from topology import names
from topology.model import NODE_KINDS, POD_GATEWAY, PROTOCOLS, NodePlan, PodPlan, TopologyPlan

NETNS_NAME_MAX = 255  # a file name under /run/netns


class PlanError(ValueError):
    """A plan the engine refuses; `errors` lists every problem found."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid topology plan:\n  " + "\n  ".join(self.errors))


T = TypeVar("T")


def _duplicates(values: Iterable[T]) -> list[T]:
    return [v for v, n in Counter(values).items() if n > 1]


def _repeated(values: Iterable[object], message: str) -> list[str]:
    return [message.format(v) for v in _duplicates(values)]


def _ifname_errors(what: str, ifname: str) -> list[str]:
    if not ifname or len(ifname) > names.IFNAME_MAX or "/" in ifname or " " in ifname:
        return [f"{what}: interface name {ifname!r} must be 1-{names.IFNAME_MAX} characters, no '/' or space"]
    return []


def _netns_errors(lab: str, what: str, netns: str) -> list[str]:
    prefix = names.lab_netns_prefix(lab)
    errors = []
    if not netns.startswith(prefix):
        errors.append(f"{what}: namespace {netns!r} must start with the lab prefix {prefix!r}")
    if len(netns) > NETNS_NAME_MAX or "/" in netns or netns in (".", ".."):
        errors.append(f"{what}: namespace {netns!r} is not a usable file name")
    return errors


def node_errors(plan: TopologyPlan, node: NodePlan) -> list[str]:
    what = f"node {node.name}"
    errors = _netns_errors(plan.lab, what, node.netns) + _ifname_errors(what, node.fabric_port)
    if node.kind not in NODE_KINDS:
        errors.append(f"{what}: kind {node.kind!r} is not one of {', '.join(NODE_KINDS)}")
    if node.fabric_ip.network != plan.fabric.subnet:
        errors.append(f"{what}: fabric address {node.fabric_ip} is not in the fabric {plan.fabric.subnet}")
    elif node.fabric_ip.ip in (plan.fabric.subnet.network_address, plan.fabric.subnet.broadcast_address):
        errors.append(f"{what}: fabric address {node.fabric_ip.ip} is the subnet's network or broadcast address")
    if node.fabric_ip.ip == plan.fabric.gateway.ip:
        errors.append(f"{what}: fabric address {node.fabric_ip.ip} is the fabric gateway")
    return errors


def pod_errors(lab: str, pod: PodPlan) -> list[str]:
    """What is wrong with one pod on its own (its host is checked by the caller, who knows the hosts)."""
    what = f"pod {pod.key}"
    errors = _netns_errors(lab, what, pod.netns) + _ifname_errors(what, pod.host_ifname)
    if pod.ip == POD_GATEWAY or pod.ip.is_loopback or pod.ip.is_multicast or pod.ip.is_unspecified:
        errors.append(f"{what}: address {pod.ip} cannot be a pod address")
    for port in pod.ports:
        if not 1 <= port.port <= 65535:
            errors.append(f"{what}: port {port.port} is outside 1-65535")
        if port.protocol not in PROTOCOLS:
            errors.append(f"{what}: protocol {port.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    for port_number, protocol in _duplicates((p.port, p.protocol) for p in pod.ports):
        errors.append(f"{what}: port {port_number}/{protocol} declared twice")
    return errors


def _pod_host_errors(pod: PodPlan, hosts: dict[str, NodePlan]) -> list[str]:
    host = hosts.get(pod.host)
    if host is None:
        return [f"pod {pod.key}: host {pod.host!r} is not a host of the lab"]
    if host.netns != pod.host_netns:
        return [f"pod {pod.key}: host namespace {pod.host_netns!r} is not host {pod.host}'s {host.netns!r}"]
    return []


def _pod_set_errors(pods: Sequence[PodPlan], taken_ips: set[IPv4Address]) -> list[str]:
    errors = _repeated((p.key for p in pods), "pod {}: declared twice")
    errors += _repeated((p.netns for p in pods), "namespace {}: used by two pods")
    errors += _repeated((p.ip for p in pods), "address {}: given to two pods")
    for host, ifname in _duplicates((p.host, p.host_ifname) for p in pods):
        errors.append(f"host {host}: interface {ifname} used by two pods")
    for pod in pods:
        if pod.ip in taken_ips:
            errors.append(f"pod {pod.key}: address {pod.ip} is a fabric address")
    return errors


def plan_errors(plan: TopologyPlan) -> list[str]:
    errors: list[str] = []
    try:
        names.check_lab_name(plan.lab)
    except names.NameError_ as exc:
        errors.append(str(exc))
    if plan.fabric.lab != plan.lab:
        errors.append(f"fabric: lab {plan.fabric.lab!r} differs from the plan's {plan.lab!r}")
    if plan.fabric.gateway.network != plan.fabric.subnet:
        errors.append(f"fabric: gateway {plan.fabric.gateway} is not in the fabric {plan.fabric.subnet}")
    for node in plan.nodes:
        errors += node_errors(plan, node)
    errors += _repeated((n.name for n in plan.nodes), "node {}: declared twice")
    errors += _repeated((n.netns for n in plan.nodes), "namespace {}: used by two nodes")
    errors += _repeated((n.fabric_ip.ip for n in plan.nodes), "fabric address {}: given to two nodes")
    errors += _repeated((n.fabric_port for n in plan.nodes), "fabric port {}: used by two nodes")
    hosts = {n.name: n for n in plan.hosts()}
    for pod in plan.pods:
        errors += pod_errors(plan.lab, pod) + _pod_host_errors(pod, hosts)
    node_netns = {n.netns for n in plan.nodes} | {plan.fabric.netns}
    for pod in plan.pods:
        if pod.netns in node_netns:
            errors.append(f"pod {pod.key}: namespace {pod.netns!r} is a node's")
    fabric_ips = {n.fabric_ip.ip for n in plan.nodes} | {plan.fabric.gateway.ip}
    return errors + _pod_set_errors(plan.pods, fabric_ips)


def check_plan(plan: TopologyPlan) -> None:
    errors = plan_errors(plan)
    if errors:
        raise PlanError(errors)


def check_new_pods(lab: str, pods: Sequence[PodPlan], existing_netns: Iterable[str]) -> None:
    """Pods added to a running lab: well-formed, and not clashing with any namespace already there.

    The hosts are known only by their namespaces here, so a pod's host must already exist.
    """
    existing = set(existing_netns)
    errors: list[str] = []
    for pod in pods:
        what = f"pod {pod.key}"
        if pod.netns in existing:
            errors.append(f"{what}: namespace {pod.netns!r} already exists")
        if pod.host_netns not in existing:
            errors.append(f"{what}: host namespace {pod.host_netns!r} does not exist")
        errors += pod_errors(lab, pod)
    errors += _pod_set_errors(pods, set())
    if errors:
        raise PlanError(errors)

