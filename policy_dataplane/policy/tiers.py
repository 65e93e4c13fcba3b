"""One direction of one flow through the tiers that apply to its local endpoint: the types a verdict's
trace is made of (`Flow`, `Side`, `DirectionTrace`, `Reason`...), rule and entity matching, and
`walk_tiers`. `evaluate.py` runs it for a pod's egress and ingress, `hostpath.py` for the host endpoints on
the way; both import it, so neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from policy_dataplane.policy.model import (
    Action,
    Direction,
    EntityMatch,
    ExternalHost,
    HostNode,
    IPAddress,
    NamedPort,
    Pod,
    PortMatch,
    Rule,
    Selector,
    protocol_name,
)
from policy_dataplane.policy.resolve import ResolvedTier
from policy_dataplane.policy.world import World, hep_item, netset_item, pod_item

Endpoint = Pod | HostNode | ExternalHost


class Outcome(str, Enum):
    ALLOW = "allow"
    DENY = "deny"
    PASS = "pass"
    NO_MATCH = "no-match"  # the policy reached its end: the next policy of the tier is evaluated


@dataclass(frozen=True)
class Flow:
    src: Endpoint
    dst: Endpoint
    protocol: int
    port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    src_port: int | None = None
    src_ip: IPAddress | None = None
    dst_ip: IPAddress | None = None
    # A flow to a Service: the (ClusterIP, Service port) the packet carries until the DNAT picks `dst`; preDNAT
    # policy sees it where the packet still carries it (`hostpath`)
    pre_dnat_dst: tuple[IPAddress, int] | None = None

    def describe(self) -> str:
        what = protocol_name(self.protocol)
        if self.port is not None:
            what += f"/{self.port}"
        if self.icmp_type is not None:
            what += f" type {self.icmp_type}" + (f" code {self.icmp_code}" if self.icmp_code is not None else "")
        return f"{self.src} -> {self.dst} {what}"


@dataclass(frozen=True)
class RuleRef:
    """A rule by position: policy name, tier, 0-based index in the direction's rule list, action."""

    policy: str
    tier: str
    index: int
    action: Action
    staged: bool = False

    def __str__(self) -> str:
        return f"{self.policy} (tier {self.tier}) {self.action.value} rule #{self.index}"


@dataclass(frozen=True)
class PolicyStep:
    policy: str
    order: float | None
    outcome: Outcome
    rule: RuleRef | None  # the rule that ended evaluation in this policy
    logs: tuple[RuleRef, ...] = ()
    staged: bool = False


@dataclass(frozen=True)
class TierStep:
    tier: str
    order: float | None
    policies: tuple[PolicyStep, ...]
    outcome: Outcome  # ALLOW / DENY / PASS; DENY or PASS with rule None means the tier's default action
    declared: bool = True


class Reason(str, Enum):
    NOT_A_POD = "not a pod: no policy applies"
    NOT_ISOLATED = "not isolated: no policy selects it for this direction"
    ALLOWED_BY_RULE = "allowed by rule"
    DENIED_BY_RULE = "denied by rule"
    NOTHING_ALLOWED = "no policy allowed it: end of tier default action (Deny)"
    PASSED_THROUGH = "every tier passed: the namespace profile allows"
    # host endpoints (hostpath.py)
    NO_DECISION = "no rule decided: evaluation goes on"
    HOST_ENDPOINT_DEFAULT_DENY = "host endpoint: no policy allowed it and no default-allow profile: denied"
    PROFILE_ALLOWS = "host endpoint: no policy decided: its default-allow profile allows"
    FAILSAFE = "failsafe port: always allowed"
    NOT_FORWARD_POLICED = "forwarded, and no applyOnForward policy selects the host endpoint: allowed"
    ENDPOINT_TO_HOST = "a pod's traffic to its own host: the DefaultEndpointToHostAction decides"
    UNTRACKED_ALLOWED = "allowed by a doNotTrack rule, and so is its reply"
    UNTRACKED_REPLY_DENIED = "allowed by a doNotTrack rule, but no doNotTrack rule allows the reply (no conntrack state)"
    PRE_DNAT_ALLOWED = "allowed by a preDNAT rule: normal host endpoint policy is skipped"


@dataclass(frozen=True)
class DirectionTrace:
    direction: Direction
    endpoint: str  # the pod whose policy is evaluated (or the non-pod address)
    allowed: bool
    reason: Reason
    tiers: tuple[TierStep, ...] = ()
    decided_by: RuleRef | None = None
    decided_in_tier: str | None = None
    logs: tuple[RuleRef, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    flow: Flow
    allowed: bool
    egress: DirectionTrace
    ingress: DirectionTrace
    staged: Verdict | None = None  # what would happen with staged policies enforced (None: none exist)
    hops: tuple[DirectionTrace, ...] = ()  # host endpoints on the way (hostpath.py), in path order

    @property
    def would_change(self) -> bool:
        return self.staged is not None and self.staged.allowed != self.allowed


# --- matching ------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One end of the flow as a rule sees it."""

    endpoint: Endpoint
    ip: IPAddress | None
    port: int | None
    notes: list[str] = field(default_factory=list)


def _in_selector(world: World, selector: Selector, side: Side) -> bool:
    if isinstance(side.endpoint, Pod) and world.selector_matches_item(selector, pod_item(side.endpoint.key)):
        return True
    if side.ip is not None:  # host endpoints: by their expected IPs, as the compiled address set holds them
        for hep in world.heps_containing(side.ip):
            if world.selector_matches_item(selector, hep_item(hep.name)):
                return True
    # Network sets: an address inside a selected set's CIDRs matches (as the compiled address set does).
    if side.ip is not None:
        for netset in world.netsets_containing(side.ip):
            if world.selector_matches_item(selector, netset_item(netset.key)):
                return True
    return False


def _port_matches(pm: PortMatch, side: Side, protocol: int) -> bool:
    if side.port is None:
        return False
    if isinstance(pm, NamedPort):
        return isinstance(side.endpoint, Pod) and side.endpoint.named_port(pm.name, protocol) == side.port
    return pm.contains(side.port)


def entity_matches(world: World, em: EntityMatch, side: Side, protocol: int) -> bool:
    if em.nets:
        if side.ip is None:
            side.notes.append(f"{side.endpoint} has no IP: nets/ipBlock rules cannot match it")
            return False
        if not any(side.ip in net for net in em.nets):
            return False
    if em.not_nets and side.ip is not None and any(side.ip in net for net in em.not_nets):
        return False
    if em.selector is not None and not _in_selector(world, em.selector, side):
        return False
    if em.not_selector is not None and _in_selector(world, em.not_selector, side):
        return False
    if em.ports and not any(_port_matches(p, side, protocol) for p in em.ports):
        return False
    if em.not_ports and any(_port_matches(p, side, protocol) for p in em.not_ports):
        return False
    return True


def rule_matches(world: World, rule: Rule, flow: Flow, src: Side, dst: Side) -> bool:
    if rule.protocol is not None and rule.protocol != flow.protocol:
        return False
    if rule.not_protocol is not None and rule.not_protocol == flow.protocol:
        return False
    if rule.ip_version is not None:
        ip = src.ip or dst.ip
        if ip is not None and ip.version != rule.ip_version:
            return False
    if rule.icmp is not None and not rule.icmp.matches(flow.icmp_type, flow.icmp_code):
        return False
    if rule.not_icmp is not None and rule.not_icmp.matches(flow.icmp_type, flow.icmp_code):
        return False
    return entity_matches(world, rule.source, src, flow.protocol) and entity_matches(
        world, rule.destination, dst, flow.protocol
    )


# --- evaluation ----------------------------------------------------------------------------------------


def walk_tiers(
    world: World, flow: Flow, direction: Direction, tiers: tuple[ResolvedTier, ...], src: Side, dst: Side,
    endpoint: str, *, end: Outcome = Outcome.ALLOW, tier_default: bool = True, end_reason: Reason | None = None,
) -> DirectionTrace:
    """Evaluate ordered tiers for one endpoint and direction. `end`: what happens when every tier passed (the
    profile: ALLOW for pods; DENY for a host endpoint without the default-allow profile; NO_MATCH for
    untracked and pre-DNAT policy, which only decide what a rule says). `tier_default`: a tier where no
    policy decided applies its default action (not so for untracked and pre-DNAT policy)."""
    steps: list[TierStep] = []
    all_logs: list[RuleRef] = []
    notes: list[str] = []
    for rt in tiers:
        policy_steps: list[PolicyStep] = []
        tier_outcome: Outcome | None = None
        decided: RuleRef | None = None
        if not rt.declared and tier_default:
            notes.append(f"tier {rt.tier.name!r} is not declared: it sorts last and denies by default")
        for policy in rt.policies:
            logs: list[RuleRef] = []
            outcome, ref = Outcome.NO_MATCH, None
            for i, rule in enumerate(policy.rules(direction)):
                if not rule_matches(world, rule, flow, src, dst):
                    continue
                r = RuleRef(policy.name, rt.tier.name, i, rule.action, policy.staged is not None)
                if rule.action is Action.LOG:
                    logs.append(r)
                    continue
                outcome = {Action.ALLOW: Outcome.ALLOW, Action.DENY: Outcome.DENY, Action.PASS: Outcome.PASS}[
                    rule.action
                ]
                ref = r
                break
            all_logs += logs
            policy_steps.append(PolicyStep(policy.name, policy.order, outcome, ref, tuple(logs), policy.staged is not None))
            if outcome is not Outcome.NO_MATCH:
                tier_outcome, decided = outcome, ref
                break
        if tier_outcome is None:  # every policy fell through: the tier's default action
            deny = tier_default and rt.tier.default_action is not Action.PASS
            tier_outcome = Outcome.DENY if deny else Outcome.PASS
        steps.append(TierStep(rt.tier.name, rt.tier.order, tuple(policy_steps), tier_outcome, rt.declared))
        notes += [n for n in src.notes + dst.notes if n not in notes]
        if tier_outcome is Outcome.ALLOW:
            return DirectionTrace(
                direction, endpoint, True, Reason.ALLOWED_BY_RULE, tuple(steps), decided, rt.tier.name,
                tuple(all_logs), tuple(notes),
            )
        if tier_outcome is Outcome.DENY:
            reason = Reason.DENIED_BY_RULE if decided else Reason.NOTHING_ALLOWED
            return DirectionTrace(
                direction, endpoint, False, reason, tuple(steps), decided, rt.tier.name, tuple(all_logs),
                tuple(notes),
            )
    if end is Outcome.NO_MATCH:
        reason = end_reason or Reason.NO_DECISION
    elif end is Outcome.ALLOW:
        reason = end_reason or (Reason.PASSED_THROUGH if tiers else Reason.NOT_ISOLATED)
    else:
        reason = end_reason or Reason.HOST_ENDPOINT_DEFAULT_DENY
    return DirectionTrace(direction, endpoint, end is not Outcome.DENY, reason, tuple(steps), None, None,
                          tuple(all_logs), tuple(notes))
