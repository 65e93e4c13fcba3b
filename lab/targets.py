"""Turning what users type (`dev/web`, `node1`, `tasks`) into namespaces and addresses of a running lab."""

from __future__ import annotations

from lab.plan import plan_node_addresses_from_model
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from topology.model import node_netns


def node_addresses(runtime: LabRuntime, kind: str | None = None) -> dict[str, str]:
    """Fabric address of every node (or every node of one kind) by name: `tasks` -> `10.99.0.4`."""
    return {n.name: str(n.ip.ip) for n in plan_node_addresses_from_model(runtime.lab, runtime.spec)
            if kind is None or n.kind == kind}


def resolve_netns(runtime: LabRuntime, target: str) -> str:
    if "/" in target:
        for plan in pod_plans(runtime, everywhere=True):
            if plan.key == target:
                return plan.netns
        raise KeyError(f"no pod {target!r} in lab {runtime.lab!r} (see `lab status`)")
    for node in plan_node_addresses_from_model(runtime.lab, runtime.spec):
        if node.name == target:
            return node_netns(runtime.lab, node.name, node.kind)  # type: ignore[arg-type]
    raise KeyError(f"no pod or node {target!r} in lab {runtime.lab!r}: pods are NS/POD, nodes are host names")
