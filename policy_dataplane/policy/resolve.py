"""Which policies apply to an endpoint, per direction, in evaluation order.

Tiers in order (lower `order` first, none last, ties by name); inside a tier, policies in order (same
rule). Only policies whose `types` contain the direction count, and a tier with none of them is left out
(so an endpoint that no policy selects for a direction is not isolated in that direction).

Host endpoint policy comes in phases (`Phase`): the tracked policy of traffic to and from the host's own
processes (NORMAL, the only phase a pod has), `applyOnForward` policy for traffic the host forwards
(FORWARD), `doNotTrack` policy (UNTRACKED) and `preDNAT` policy (PRE_DNAT). Each phase sees only its
policies; a pod never sees doNotTrack or preDNAT policies.

The staged view is what enforcement would look like if every staged policy were applied: a staged `Set`
replaces (or adds) the enforced policy with the same kind, namespace and name; a staged `Delete` removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from policy_dataplane.policy.model import Direction, HostEndpoint, Pod, Policy, StagedAction, Tier
from policy_dataplane.policy.world import World, hep_item, pod_item


class Phase(str, Enum):
    NORMAL = "normal"
    FORWARD = "forward"
    UNTRACKED = "untracked"
    PRE_DNAT = "preDNAT"

    def admits(self, policy: Policy) -> bool:
        if self is Phase.UNTRACKED:
            return policy.do_not_track
        if self is Phase.PRE_DNAT:
            return policy.pre_dnat
        if policy.do_not_track or policy.pre_dnat:
            return False
        return self is Phase.NORMAL or policy.apply_on_forward


@dataclass(frozen=True)
class ResolvedTier:
    tier: Tier
    policies: tuple[Policy, ...]
    declared: bool = True  # False: the tier object does not exist (it sorts last and denies by default)


def applicable_policies(world: World, pod: Pod | HostEndpoint, *, staged_view: bool = False) -> list[Policy]:
    enforced = {p.key: p for p in world.policies_applying(pod)}
    if not staged_view:
        return list(enforced.values())
    for staged in world.staged.values():
        if staged.staged is StagedAction.DELETE:
            enforced.pop(staged.key, None)
    for staged in world.policies_applying(pod, staged=True):
        if staged.staged is StagedAction.SET:
            enforced[staged.key] = staged
    # A staged Set of a policy that no longer selects this pod hides the enforced version too.
    for staged in world.staged.values():
        if staged.staged is StagedAction.SET and staged.key in enforced and enforced[staged.key] is not staged:
            item = hep_item(pod.name) if isinstance(pod, HostEndpoint) else pod_item(pod.key)
            if not world.selector_matches_item(staged.applies_to, item):
                del enforced[staged.key]
    return list(enforced.values())


def resolve(world: World, pod: Pod | HostEndpoint, direction: Direction, *, staged_view: bool = False,
            phase: Phase = Phase.NORMAL) -> tuple[ResolvedTier, ...]:
    by_tier: dict[str, list[Policy]] = {}
    for policy in applicable_policies(world, pod, staged_view=staged_view):
        if direction in policy.types and phase.admits(policy):
            by_tier.setdefault(policy.tier, []).append(policy)
    tiers = [world.tier(name) for name in by_tier]
    tiers.sort(key=Tier.sort_key)
    return tuple(
        ResolvedTier(t, tuple(sorted(by_tier[t.name], key=Policy.sort_key)), t.name in world.tiers) for t in tiers
    )


__all__ = ["Phase", "ResolvedTier", "applicable_policies", "resolve"]
