"""Which policies apply to an endpoint, per direction, in evaluation order.

Tiers in order (lower `order` first, none last, ties by name); inside a tier, policies in order (same
rule). Only policies whose `types` contain the direction count, and a tier with none of them is left out
(so an endpoint that no policy selects for a direction is not isolated in that direction).

The staged view is what enforcement would look like if every staged policy were applied: a staged `Set`
replaces (or adds) the enforced policy with the same kind, namespace and name; a staged `Delete` removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy_dataplane.policy.model import Direction, Pod, Policy, StagedAction, Tier
from policy_dataplane.policy.world import World


@dataclass(frozen=True)
class ResolvedTier:
    tier: Tier
    policies: tuple[Policy, ...]
    declared: bool = True  # False: the tier object does not exist (it sorts last and denies by default)


def applicable_policies(world: World, pod: Pod, *, staged_view: bool = False) -> list[Policy]:
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
            if not world.selector_matches_item(staged.applies_to, ("pod", pod.namespace, pod.name)):
                del enforced[staged.key]
    return list(enforced.values())


def resolve(world: World, pod: Pod, direction: Direction, *, staged_view: bool = False) -> tuple[ResolvedTier, ...]:
    by_tier: dict[str, list[Policy]] = {}
    for policy in applicable_policies(world, pod, staged_view=staged_view):
        if direction in policy.types:
            by_tier.setdefault(policy.tier, []).append(policy)
    tiers = [world.tier(name) for name in by_tier]
    tiers.sort(key=Tier.sort_key)
    return tuple(
        ResolvedTier(t, tuple(sorted(by_tier[t.name], key=Policy.sort_key)), t.name in world.tiers) for t in tiers
    )


__all__ = ["ResolvedTier", "applicable_policies", "resolve"]
