"""An opened lab: its store, spec and paths, and what the commands ask of a running lab.

Everything reads the store (the desired state) first; the kernel is only ever changed through the
fabric (`lab.fabric`) and dataplane facades.
"""

from __future__ import annotations

import fcntl
import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cached_property
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from lab.labfile import LabSpecModel
from lab.objects import fixed_ip, pod_container, pod_ports
from lab.store import ObjectKey, Placement, Store
from topology import names
from topology.model import PodPlan, PortPlan, ServerPlan, plan_pod

if TYPE_CHECKING:
    from bgp.ipam import Ipam
    from lab.fabric import Fabric
    from policy_dataplane.dataplane.lab_dataplane import Dataplane, SyncReport
    from traffic.model import ProbeEndpoint


class LabNotUp(RuntimeError):
    pass


P = ParamSpec("P")
R = TypeVar("R")


def one_change_at_a_time(change: Callable[Concatenate["LabRuntime", P], R]) -> Callable[Concatenate["LabRuntime", P], R]:
    """Runs a change of a running lab under `LabRuntime.exclusive()`."""

    @functools.wraps(change)
    def locked(runtime: "LabRuntime", *args: P.args, **kwargs: P.kwargs) -> R:
        with runtime.exclusive():
            return change(runtime, *args, **kwargs)

    return locked


class PodAddressError(ValueError):
    """The IPAM refused the `index`-th pod of a batch; `cause` is its own message."""

    def __init__(self, index: int, namespace: str, name: str, cause: Exception):
        super().__init__(f"pod {namespace}/{name}: {cause}")
        self.index, self.cause = index, cause


class LabRuntime:
    def __init__(self, lab: str, store: Store | None = None):
        self.lab = names.check_lab_name(lab)
        self.paths = names.LabPaths.for_lab(lab)
        if store is None:
            if not self.paths.database.exists():
                raise LabNotUp(f"no lab named {lab!r} is up (its state {self.paths.database} does not exist)")
            store = Store(self.paths.database)
        self.store = store
        self._await_revision: int | None = None  # a change left to the lab's controller: its revision

    @classmethod
    def open(cls, lab: str) -> "LabRuntime":
        return cls(lab)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One change at a time per lab: another command changing it waits here, so the store, the kernel
        and the saved dataplane state move together (a lock file in the run directory, released on exit
        even if the process dies)."""
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.paths.config_file("changes.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        if self._await_revision is not None:  # the change is committed: wait until the controller programs it
            from lab.controller.launcher import wait_programmed

            revision, self._await_revision = self._await_revision, None
            wait_programmed(self.paths, revision)

    def close(self) -> None:
        self.store.close()

    # desired state --------------------------------------------------------------------------------
    @cached_property
    def spec(self) -> LabSpecModel:
        return LabSpecModel.model_validate(self.store.get_meta("spec"))

    def host_names(self) -> list[str]:
        return self.spec.host_names()

    def pod_documents(self) -> list[tuple[ObjectKey, dict[str, Any]]]:
        return self.store.objects(kinds=["Pod"])

    @staticmethod
    def fixed_ip_of(doc: dict[str, Any]) -> IPv4Address | None:
        ip = fixed_ip(doc)
        return IPv4Address(ip) if ip else None

    # addresses ------------------------------------------------------------------------------------
    def ipam(self) -> "Ipam":
        from bgp.ipam import Ipam, IpamConfig

        cfg = self.spec.ipam
        config = IpamConfig(
            pool=cfg.pool, block_prefix=cfg.blockSize, max_blocks_per_host=cfg.maxBlocksPerHost,
            strict_affinity=cfg.strictAffinity,
        )
        records = self.store.get_ipam_records()
        return Ipam.from_records(config, records) if records else Ipam(config)

    def assign_addresses(self, pods: list[tuple[str, str, str, IPv4Address | None]]) -> list[IPv4Address]:
        """Allocates and records addresses for (namespace, name, host, fixed) pods with one IPAM load and
        one store write; call inside a store transaction (a failure then leaves no trace)."""
        from bgp.ipam import IpamError

        ipam = self.ipam()
        ips = []
        for index, (namespace, name, host, fixed) in enumerate(pods):
            try:
                ip = ipam.allocate(f"{namespace}/{name}", host, fixed)
            except IpamError as exc:
                raise PodAddressError(index, namespace, name, exc) from None
            self.store.put_placement(Placement(namespace, name, host, str(ip)))
            ips.append(ip)
        self.store.set_ipam_records(ipam.to_records())
        return ips

    def release_addresses(self, pods: list[tuple[str, str]]) -> None:
        """Gives the (namespace, name) pods' addresses back with one IPAM load and one store write."""
        if not pods:
            return
        ipam = self.ipam()
        for namespace, name in pods:
            ipam.release(f"{namespace}/{name}")
            self.store.delete_placement(namespace, name)
        self.store.set_ipam_records(ipam.to_records())

    # plans ----------------------------------------------------------------------------------------
    def pod_plans(self, only: set[str] | None = None) -> list[PodPlan]:
        """Topology plans of the placed pods (all, or those whose `ns/name` is in `only`)."""
        docs = {f"{k.namespace}/{k.name}": doc for k, doc in self.pod_documents()}
        plans = []
        for p in self.store.placements():
            key = f"{p.namespace}/{p.name}"
            if key not in docs or (only is not None and key not in only):
                continue
            plans.append(plan_pod(self.lab, p.namespace, p.name, p.host, p.ip, pod_ports(docs[key]),
                                  pod_container(docs[key])))
        return plans

    def responder_targets(self) -> list[PodPlan | ServerPlan]:
        """Everything that answers on its declared ports: the placed pods, the external servers and the
        hosts' own daemons (`hostPorts`, e.g. SSH on 22)."""
        servers = [
            ServerPlan(ext.name, names.external_netns(self.lab, ext.name),
                       tuple(PortPlan(p.containerPort, p.protocol, p.name) for p in ext.ports))
            for ext in self.spec.externals if ext.ports
        ]  # fmt: skip
        host_ports = tuple(PortPlan(p.containerPort, p.protocol, p.name) for p in self.spec.hostPorts)
        if host_ports:
            servers += [ServerPlan(h, names.host_netns(self.lab, h), host_ports) for h in self.host_names()]
        return [*self._responder_pods(), *servers]

    def _responder_pods(self) -> list[PodPlan]:
        """Pod plans the responder serves: without the ports the services process serves (DNS, egress
        gateways), and without Docker pods that serve with their own command."""
        import dataclasses

        from lab.services import served_by_daemon

        labels = {(k.namespace, k.name): (d.get("metadata") or {}).get("labels") or {} for k, d in self.pod_documents()}
        plans = []
        for plan in self.pod_plans():
            if plan.container is not None and not plan.container.responder:
                continue  # a Docker pod serving with its own command
            pod_labels = labels.get((plan.namespace, plan.name), {})
            ports = tuple(p for p in plan.ports if not served_by_daemon(plan.namespace, pod_labels, p.port))
            plans.append(plan if ports == plan.ports else dataclasses.replace(plan, ports=ports))
        return plans

    def fabric(self) -> "Fabric":
        from lab.fabric import Fabric

        return Fabric(self)

    # policy -------------------------------------------------------------------------------------
    @property
    def dataplane_state(self) -> Path:
        return self.paths.config_file("dataplane.state")

    def dataplane(self) -> "Dataplane":
        """The hosts' filters, taking over what earlier commands applied (so changes go as diffs)."""
        from policy_dataplane.dataplane.lab_dataplane import Dataplane

        dp = Dataplane(self.lab, backend=self.spec.dataplane, host_netns=self.node_netns)
        dp.load_state(self.dataplane_state)
        return dp

    def node_netns(self, node: str) -> str:
        """The namespace of a host or an external server (both carry a filter table: externals are
        standalone hosts that host endpoints can guard)."""
        externals = {e.name for e in self.spec.externals}
        return names.external_netns(self.lab, node) if node in externals else names.host_netns(self.lab, node)

    def placement(
        self, placements: Iterable[Placement] | None = None
    ) -> dict[str, list[tuple[tuple[str, str], str]]]:
        """node -> [((namespace, pod), host-side interface)] of every running pod (from `placements` when the
        caller has read them already); external servers are nodes without pods."""
        out: dict[str, list[tuple[tuple[str, str], str]]] = {h: [] for h in self.host_names()}
        out.update({e.name: [] for e in self.spec.externals})
        for p in self.store.placements() if placements is None else placements:
            # placements and pod documents are written together
            out[p.host].append(((p.namespace, p.name), names.pod_host_ifname(p.namespace, p.name)))
        return out

    def dataplane_install_base(self) -> None:
        """Fail-closed filters on every host before any pod exists: an unknown pod interface is dropped."""
        dp = self.dataplane()
        try:
            for host in self.host_names():
                dp.install_base(host)
            dp.save_state(self.dataplane_state)
        finally:
            dp.close()

    def apply_policy_files(self, files: list[Path]) -> None:
        if files:
            from lab.apply import apply_files

            apply_files(self, files)

    def sync_policy(self) -> "SyncReport | None":
        """Brings every host's filters in line with the store: one transaction per changed host (from this
        process's warm world and filters when it has them, see `lab.warm`). When the lab's controller runs,
        it is the filters' only writer: the change is left to it, and `exclusive()` waits for it (None)."""
        from lab import services, warm
        from lab.controller.launcher import running_pid

        if running_pid(self.paths) is not None:
            services.sync(self)  # Services' DNAT, DNS records, gateways, resolv.conf: not the controller's yet
            self._await_revision = self.store.revision
            return None
        report = warm.sync(self)
        services.sync(self)  # Services' DNAT, DNS records, gateways, resolv.conf: they follow the same state
        return report


# What the traffic commands ask of a running lab -------------------------------------------------------
def probe_endpoints(lab: str, hosts: bool = False) -> list["ProbeEndpoint"]:
    """Every pod and external host of a running lab (and with `hosts` the hosts themselves), as the probes
    address them."""
    from lab.plan import plan_node_addresses_from_model
    from topology.model import node_netns
    from traffic.model import ProbeEndpoint

    runtime = LabRuntime.open(lab)
    try:
        endpoints = [
            ProbeEndpoint(name=p.key, netns=p.netns, ip=p.ip, kind="pod", namespace=p.namespace, host=p.host)
            for p in runtime.pod_plans()
        ]
        for node in plan_node_addresses_from_model(lab, runtime.spec):
            if node.kind == "external":
                endpoints.append(ProbeEndpoint(name=node.name, netns=node_netns(lab, node.name, "external"),
                                               ip=node.ip.ip, kind="external", namespace="(external)",
                                               host=node.name))
            elif node.kind == "host" and hosts:
                endpoints.append(ProbeEndpoint(name=node.name, netns=node_netns(lab, node.name, "host"),
                                               ip=node.ip.ip, kind="host", namespace="(hosts)", host=node.name))
    finally:
        runtime.close()
    return endpoints


def expected_verdicts(
    lab: str, pairs: list[tuple["ProbeEndpoint", "ProbeEndpoint"]], protocol: str, port: int | None
) -> list[bool]:
    """The oracle's verdict for each (source, destination) pair, from one bulk matrix of the lab's world."""
    from lab import service_targets
    from lab.stored_world import world_of
    from policy_dataplane.policy.bulk import matrix
    from traffic.packets import ICMP_PROBE_CODE, ICMP_PROBE_TYPE

    proto = str(protocol.value if hasattr(protocol, "value") else protocol)
    runtime = LabRuntime.open(lab)
    try:
        world = world_of(runtime)
        to_services = {i: service_targets.expected(world, runtime, ref(s), d.name, proto, port or 0)
                       for i, (s, d) in enumerate(pairs) if d.kind == "service"}
    finally:
        runtime.close()
    direct = [pair for i, pair in enumerate(pairs) if i not in to_services]
    refs = sorted({ref(e) for pair in direct for e in pair})
    if not refs:
        return [to_services[i] for i in range(len(pairs))]
    if proto.lower() == "icmp":  # the oracle judges the very packet the probes send: an echo request
        m = matrix(world, proto, None, refs, icmp_type=ICMP_PROBE_TYPE, icmp_code=ICMP_PROBE_CODE)
    else:
        m = matrix(world, proto, port, refs)
    index = {r: i for i, r in enumerate(refs)}
    return [to_services[i] if i in to_services else bool(m.allowed[index[ref(s)], index[ref(d)]])
            for i, (s, d) in enumerate(pairs)]


def ref(ep: "ProbeEndpoint") -> str:
    """How the oracle names an endpoint: a pod by NS/NAME, anything else by its address."""
    return ep.name if ep.kind == "pod" else str(ep.ip)



def latency_conditions(lab: str) -> dict[str, Callable[[], AbstractContextManager[None]]]:
    """The conditions `lab latency` compares: the lab as it is ("with policy") and the same endpoints with
    every policy lifted ("policy lifted": filters still dispatch per endpoint, no policy is evaluated).
    The lifted state lasts only for the measurement: the store's policies are programmed back afterwards,
    even when the run fails. A lab without policies has one condition."""
    from lab import warm
    from lab.stored_world import lab_nodes, model_objects
    from policy_dataplane.policy.model import Policy
    from policy_dataplane.policy.world import World

    runtime = LabRuntime.open(lab)
    try:
        objects = model_objects(runtime)
    finally:
        runtime.close()
    without = [o for o in objects if not isinstance(o, Policy)]
    if len(without) == len(objects):
        return {"no policy": nullcontext}

    @contextmanager
    def policy_lifted() -> Iterator[None]:
        runtime = LabRuntime.open(lab)
        with runtime.exclusive():  # no other change while the policies are lifted
            try:
                warm.forget(lab)  # the filters change behind the warm state's back
                dp = runtime.dataplane()
                lifted = World.from_objects(without)
                lifted.set_nodes(lab_nodes(runtime))
                try:
                    dp.sync(lifted, runtime.placement())
                    dp.save_state(runtime.dataplane_state)
                finally:
                    dp.close()
                yield
            finally:
                runtime.sync_policy()
                runtime.close()

    return {"with policy": nullcontext, "policy lifted": policy_lifted}
