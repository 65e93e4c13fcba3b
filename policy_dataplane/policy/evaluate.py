"""The oracle: should this flow pass, and which policy and rule decided it.

`verdict(world, src, dst, protocol, port)` evaluates the source pod's egress and the destination pod's
ingress (an end that is not a pod has no policy), tier by tier as described in model.py, and returns a
`Verdict` with a trace per direction: the tiers and policies that applied, what each did, the deciding
rule (or "no policy allowed it" / "not isolated"), and every Log rule hit on the way. If staged policies
exist, `Verdict.staged` holds what the verdict would be if they were enforced.
Replies of an allowed connection always pass (conntrack), so a verdict is about who may open a flow.
"""

from __future__ import annotations

import ipaddress

from policy_dataplane.policy.hostpath import host_hops
from policy_dataplane.policy.model import Direction, ExternalHost, HostNode, IPAddress, Pod, protocol_number
from policy_dataplane.policy.resolve import resolve
from policy_dataplane.policy.tiers import (
    DirectionTrace,
    Endpoint,
    Flow,
    Outcome,
    PolicyStep,
    Reason,
    RuleRef,
    Side,
    TierStep,
    Verdict,
    entity_matches,
    rule_matches,
    walk_tiers,
)
from policy_dataplane.policy.world import World


def _evaluate_direction(
    world: World, flow: Flow, direction: Direction, src: Side, dst: Side, staged_view: bool
) -> DirectionTrace:
    local = src.endpoint if direction is Direction.EGRESS else dst.endpoint
    if not isinstance(local, Pod):
        return DirectionTrace(direction, str(local), True, Reason.NOT_A_POD)
    tiers = resolve(world, local, direction, staged_view=staged_view)
    if not tiers:
        return DirectionTrace(direction, str(local), True, Reason.NOT_ISOLATED)
    return walk_tiers(world, flow, direction, tiers, src, dst, str(local))


def _side_ip(endpoint: Endpoint, explicit: IPAddress | None) -> IPAddress | None:
    return explicit if explicit is not None else endpoint.ip


def evaluate_flow(world: World, flow: Flow, *, staged_view: bool = False) -> Verdict:
    src = Side(flow.src, _side_ip(flow.src, flow.src_ip), flow.src_port)
    dst = Side(flow.dst, _side_ip(flow.dst, flow.dst_ip), flow.port)

    egress = _evaluate_direction(world, flow, Direction.EGRESS, src, dst, staged_view)
    ingress = _evaluate_direction(world, flow, Direction.INGRESS, src, dst, staged_view)
    hops = host_hops(world, flow, src, dst, staged_view)
    allowed = egress.allowed and ingress.allowed and all(h.allowed for h in hops)
    return Verdict(flow, allowed, egress, ingress, None, hops)


def endpoint(world: World, ref: str | Endpoint | tuple[str, str]) -> Endpoint:
    """'ns/pod', ('ns', 'pod'), a node's name, a Pod, a HostNode, an ExternalHost or an IP (a pod's or a
    node's IP means that pod or node)."""
    if isinstance(ref, (Pod, ExternalHost, HostNode)):
        return ref
    if isinstance(ref, tuple):
        return world.pods[ref]
    if "/" not in ref and (node := world.node(ref)) is not None:
        return node
    try:
        ip = ipaddress.ip_address(ref)
    except ValueError:
        ns, sep, name = ref.partition("/")
        if not sep:
            ns, name = "default", ref
        pod = world.pods.get((ns, name))
        if pod is None:
            raise KeyError(f"no pod {ns}/{name} in the world (and {ref!r} is not an IP address)") from None
        return pod
    return world.pod_at(ip) or world.node_at(ip) or ExternalHost(ip)


def verdict(
    world: World,
    src: str | Endpoint | tuple[str, str],
    dst: str | Endpoint | tuple[str, str],
    protocol: str | int,
    port: int | None = None,
    icmp_type: int | None = None,
    icmp_code: int | None = None,
    *,
    src_port: int | None = None,
    src_ip: IPAddress | str | None = None,
    dst_ip: IPAddress | str | None = None,
    pre_dnat_dst: tuple[IPAddress | str, int] | None = None,
) -> Verdict:
    """Should `src` be able to open this flow to `dst`, and why. See the module docstring."""
    flow = Flow(
        endpoint(world, src),
        endpoint(world, dst),
        protocol_number(protocol),
        port,
        icmp_type,
        icmp_code,
        src_port,
        ipaddress.ip_address(src_ip) if src_ip is not None else None,
        ipaddress.ip_address(dst_ip) if dst_ip is not None else None,
        (ipaddress.ip_address(pre_dnat_dst[0]), pre_dnat_dst[1]) if pre_dnat_dst is not None else None,
    )
    enforced = evaluate_flow(world, flow)
    if not world.staged:
        return enforced
    would = evaluate_flow(world, flow, staged_view=True)
    return Verdict(flow, enforced.allowed, enforced.egress, enforced.ingress, would, enforced.hops)


__all__ = [
    "Endpoint",
    "Flow",
    "Outcome",
    "Reason",
    "RuleRef",
    "PolicyStep",
    "TierStep",
    "DirectionTrace",
    "Verdict",
    "verdict",
    "evaluate_flow",
    "endpoint",
    "rule_matches",
    "entity_matches",
    "Side",
    "walk_tiers",
]
