"""What the traffic commands ask of a running lab: its probe endpoints, the oracle's verdicts for pairs of
them, and the conditions `lab latency` compares (the policies as they are, and lifted)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

from lab import converge, service_targets, warm
from lab.plan import plan_node_addresses_from_model
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from lab.stored_world import lab_nodes, model_objects, world_of
from policy_dataplane.policy.bulk import matrix
from policy_dataplane.policy.model import Policy
from policy_dataplane.policy.world import World
from topology.model import node_netns
from topology.names import LabPaths
from traffic.model import ProbeEndpoint
from traffic.packets import ICMP_PROBE_CODE, ICMP_PROBE_TYPE


def probe_endpoints(lab: str, hosts: bool = False) -> list[ProbeEndpoint]:
    """Every pod and external host of a running lab (and with `hosts` the hosts themselves), as the probes
    address them."""
    with LabRuntime.open(lab) as runtime:
        endpoints = [
            ProbeEndpoint(name=p.key, netns=p.netns, ip=p.ip, kind="pod", namespace=p.namespace, host=p.host)
            for p in pod_plans(runtime, everywhere=True)
        ]
        for node in plan_node_addresses_from_model(lab, runtime.spec):
            if node.kind == "external":
                endpoints.append(ProbeEndpoint(name=node.name, netns=node_netns(lab, node.name, "external"),
                                               ip=node.ip.ip, kind="external", namespace="(external)",
                                               host=node.name))
            elif node.kind == "host" and hosts:
                endpoints.append(ProbeEndpoint(name=node.name, netns=node_netns(lab, node.name, "host"),
                                               ip=node.ip.ip, kind="host", namespace="(hosts)", host=node.name))
    return endpoints


WARM_PAIRS = 20_000
"""Up to this many pairs the controller answers (a sample, a scenario's checks); a whole bank's 2.25 million
pairs would be ~100 MB of JSON on its socket, where building the world here costs about a second."""


def expected_verdicts(
    lab: str, pairs: list[tuple[ProbeEndpoint, ProbeEndpoint]], protocol: str, port: int | None
) -> list[bool]:
    """The oracle's verdict for each (source, destination) pair, from one bulk matrix of the lab's world (a
    Service destination is judged through the endpoints it forwards to, `lab.service_targets`). Asked of
    the lab's controller when it has programmed the store's revision (its world is warm); else the world is
    built from the store here."""
    from lab.controller import launcher

    proto = str(protocol.value if hasattr(protocol, "value") else protocol)
    flat = [(ref(s), ref(d), d.kind, d.name) for s, d in pairs]
    if len(flat) <= WARM_PAIRS:
        try:
            answer = launcher.warm_read(LabPaths.for_lab(lab), {"op": "verdicts", "pairs": flat, "protocol": proto,
                                                                "port": port})
        except OSError:  # a controller too slow to answer: the world is built here instead
            answer = None
        if answer is not None and answer.get("ok"):
            return [bool(a) for a in answer["allowed"]]
    with LabRuntime.open(lab) as runtime:
        return verdicts(world_of(runtime), runtime, flat, proto, port)


def verdicts(world: World, runtime: LabRuntime, pairs: Sequence[tuple[str, str, str, str]], proto: str,
             port: int | None) -> list[bool]:
    """`pairs`: (source ref, destination ref, destination kind, destination name), as `expected_verdicts`."""
    to_services = {i: service_targets.expected(world, runtime, s, name, proto, port or 0)
                   for i, (s, _, kind, name) in enumerate(pairs) if kind == "service"}
    direct = [pair for i, pair in enumerate(pairs) if i not in to_services]
    refs = sorted({r for s, d, _, _ in direct for r in (s, d)})
    if not refs:
        return [to_services[i] for i in range(len(pairs))]
    if proto.lower() == "icmp":  # the oracle judges the very packet the probes send: an echo request
        m = matrix(world, proto, None, refs, icmp_type=ICMP_PROBE_TYPE, icmp_code=ICMP_PROBE_CODE)
    else:
        m = matrix(world, proto, port, refs)
    index = {r: i for i, r in enumerate(refs)}
    return [to_services[i] if i in to_services else bool(m.allowed[index[s], index[d]])
            for i, (s, d, _, _) in enumerate(pairs)]


def ref(ep: ProbeEndpoint) -> str:
    """How the oracle names an endpoint: a pod by NS/NAME, anything else by its address."""
    return ep.name if ep.kind == "pod" else str(ep.ip)


def latency_conditions(lab: str) -> dict[str, Callable[[], AbstractContextManager[None]]]:
    """The conditions `lab latency` compares: the lab as it is ("with policy") and the same endpoints with
    every policy lifted ("policy lifted": filters still dispatch per endpoint, no policy is evaluated).
    The lifted state lasts only for the measurement: the store's policies are programmed back afterwards,
    even when the run fails. A lab without policies has one condition."""
    with LabRuntime.open(lab) as runtime:
        objects = model_objects(runtime)
    without = [o for o in objects if not isinstance(o, Policy)]
    if len(without) == len(objects):
        return {"no policy": nullcontext}

    @contextmanager
    def policy_lifted() -> Iterator[None]:
        with LabRuntime.open(lab) as runtime, runtime.exclusive():  # no other change while lifted
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
                converge.sync(runtime)

    return {"with policy": nullcontext, "policy lifted": policy_lifted}


__all__ = ["expected_verdicts", "latency_conditions", "probe_endpoints", "ref", "verdicts"]
