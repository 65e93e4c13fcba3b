"""A node's own policy as a `NodeProgram`: its fabric host endpoint's tiers per phase, failsafe ports, and
the action for pods' traffic to their host. Pure; the semantics are hostpath.py's (the oracle)."""

from __future__ import annotations

from collections.abc import Callable

from policy_dataplane.dataplane.hostprogram import (
    Dir,
    FailsafeRule,
    HostEndpointProgram,
    NodeProgram,
    TierProgram,
)
from policy_dataplane.policy.hostpath import FABRIC_IFNAME, fabric_endpoint
from policy_dataplane.policy.model import Direction, FailsafePort
from policy_dataplane.policy.resolve import Phase, ResolvedTier, resolve
from policy_dataplane.policy.world import World

TierCompiler = Callable[[tuple[ResolvedTier, ...], Dir], tuple[TierProgram, ...]]


def _rules(ports: tuple[FailsafePort, ...]) -> tuple[FailsafeRule, ...]:
    return tuple(FailsafeRule(p.protocol, p.port, str(p.net) if p.net else None)
                 for p in ports if p.net is None or p.net.version == 4)


def node_program(world: World, node: str | None, compile_tiers: TierCompiler) -> NodeProgram:
    action = "drop" if world.felix.endpoint_to_host_action == "Drop" else "accept"
    hep = fabric_endpoint(world, node) if node is not None else None
    if hep is None:
        return NodeProgram(endpoint_to_host=action)

    def tiers(direction: Dir, phase: Phase) -> tuple[TierProgram, ...]:
        d = Direction.INGRESS if direction is Dir.INGRESS else Direction.EGRESS
        return compile_tiers(resolve(world, hep, d, phase=phase), direction)

    program = HostEndpointProgram(
        key=str(hep), ifname=FABRIC_IFNAME,
        ingress=tiers(Dir.INGRESS, Phase.NORMAL), egress=tiers(Dir.EGRESS, Phase.NORMAL),
        forward_ingress=tiers(Dir.INGRESS, Phase.FORWARD), forward_egress=tiers(Dir.EGRESS, Phase.FORWARD),
        untracked_ingress=tiers(Dir.INGRESS, Phase.UNTRACKED), untracked_egress=tiers(Dir.EGRESS, Phase.UNTRACKED),
        pre_dnat_ingress=tiers(Dir.INGRESS, Phase.PRE_DNAT), default_allow=hep.default_allow,
    )
    return NodeProgram(program, _rules(world.felix.failsafe_inbound), _rules(world.felix.failsafe_outbound), action)


__all__ = ["node_program"]
