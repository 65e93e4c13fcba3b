"""Topology plans of a running lab's pods and of everything the responder answers for, from the store (pod
documents and placements) and the lab spec (externals, host ports)."""

from __future__ import annotations

import dataclasses

from lab.objects import pod_container, pod_ports
from lab.runtime import LabRuntime
from services.daemon_ctl import served_by_daemon
from topology import names
from topology.model import PodPlan, PortPlan, ServerPlan, plan_pod


def pod_plans(runtime: LabRuntime, only: set[str] | None = None, everywhere: bool = False) -> list[PodPlan]:
    """Topology plans of the placed pods of this machine (all, or those whose `ns/name` is in `only`);
    `everywhere`: of every machine (probes on one box can enter any of them)."""
    docs = {f"{k.namespace}/{k.name}": doc for k, doc in runtime.pod_documents()}
    hosts = set(runtime.host_names() if everywhere else runtime.local_hosts())
    plans = []
    for p in runtime.store.placements():
        key = f"{p.namespace}/{p.name}"
        if key not in docs or (only is not None and key not in only) or p.host not in hosts:
            continue
        plans.append(plan_pod(runtime.lab, p.namespace, p.name, p.host, p.ip, pod_ports(docs[key]),
                              pod_container(docs[key])))
    return plans


def responder_targets(runtime: LabRuntime) -> list[PodPlan | ServerPlan]:
    """Everything on this machine that answers on its declared ports: the placed pods, the external servers
    and the hosts' own daemons (`hostPorts`, e.g. SSH on 22)."""
    spec = runtime.spec
    servers = [
        ServerPlan(ext.name, names.external_netns(runtime.lab, ext.name),
                   tuple(PortPlan(p.containerPort, p.protocol, p.name) for p in ext.ports))
        for ext in spec.externals if ext.ports and ext.name in runtime.local_externals()
    ]  # fmt: skip
    host_ports = tuple(PortPlan(p.containerPort, p.protocol, p.name) for p in spec.hostPorts)
    if host_ports:
        servers += [ServerPlan(h, names.host_netns(runtime.lab, h), host_ports) for h in runtime.local_hosts()]
    return [*_responder_pods(runtime), *servers]


def _responder_pods(runtime: LabRuntime) -> list[PodPlan]:
    """Pod plans the responder serves: without the ports the services process serves (DNS, egress
    gateways), and without Docker pods that serve with their own command."""
    labels = {(k.namespace, k.name): (d.get("metadata") or {}).get("labels") or {}
              for k, d in runtime.pod_documents()}
    plans = []
    for plan in pod_plans(runtime):
        if plan.container is not None and not plan.container.responder:
            continue  # a Docker pod serving with its own command
        pod_labels = labels.get((plan.namespace, plan.name), {})
        ports = tuple(p for p in plan.ports if not served_by_daemon(plan.namespace, pod_labels, p.port))
        plans.append(plan if ports == plan.ports else dataclasses.replace(plan, ports=ports))
    return plans


def other_machines_pods(runtime: LabRuntime) -> frozenset[str]:
    """Pod namespaces other machines own: on one box a machine's controller sees them, and must neither
    take them for strays nor touch them."""
    if runtime.machine is None:
        return frozenset()
    local = set(runtime.local_hosts())
    return frozenset(p.netns for p in pod_plans(runtime, everywhere=True) if p.host not in local)


__all__ = ["other_machines_pods", "pod_plans", "responder_targets"]
