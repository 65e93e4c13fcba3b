"""A verdict trace for people (rich) and for programs (JSON-ready dicts).

`render(verdict)` returns a rich renderable: the flow, the verdict, then per direction the tiers and
policies in evaluation order with what each did, the deciding rule, Log hits and notes, then the same for
each host endpoint on the way (failsafe ports, doNotTrack, preDNAT, applyOnForward); then, if staged
policies exist, what would happen with them enforced. `to_json(verdict)` gives the same as plain data.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from policy_dataplane.policy.tiers import DirectionTrace, Outcome, Reason, RuleRef, Verdict

_STYLE = {Outcome.ALLOW: "green", Outcome.DENY: "red", Outcome.PASS: "yellow", Outcome.NO_MATCH: "dim"}


def _order(order: float | None) -> str:
    if order is None:
        return "no order"
    return f"order {int(order)}" if float(order).is_integer() else f"order {order}"


def _word(allowed: bool) -> Text:
    return Text("ALLOWED", style="bold green") if allowed else Text("DENIED", style="bold red")


def _direction_tree(trace: DirectionTrace, where: str = "") -> Tree:
    head = Text.assemble(
        (f"{where}{trace.direction.value.lower()} of {trace.endpoint}: ", "bold"),
        _word(trace.allowed),
        f" ({trace.reason.value}",
        f": {trace.decided_by}" if trace.decided_by else "",
        ")",
    )
    tree = Tree(head)
    for tier in trace.tiers:
        order = _order(tier.order)
        default = "" if any(p.outcome is not Outcome.NO_MATCH for p in tier.policies) else " (tier default action)"
        node = tree.add(
            Text.assemble(f"tier {tier.tier} ({order}) -> ", (tier.outcome.value + default, _STYLE[tier.outcome]))
        )
        for step in tier.policies:
            p_order = _order(step.order)
            what = f"rule #{step.rule.index} {step.rule.action.value}" if step.rule else "no rule matched"
            line = Text.assemble(
                f"{step.policy} ({p_order}{', staged' if step.staged else ''}): ",
                (f"{step.outcome.value}", _STYLE[step.outcome]),
                f" [{what}]",
            )
            for log in step.logs:
                line.append(f"  Log rule #{log.index} hit", style="cyan")
            node.add(line)
    for note in trace.notes:
        tree.add(Text(f"note: {note}", style="italic"))
    return tree


def render(verdict: Verdict) -> RenderableType:
    parts: list[RenderableType] = [
        Text.assemble((verdict.flow.describe(), "bold"), ": ", _word(verdict.allowed)),
        _direction_tree(verdict.egress),
        _direction_tree(verdict.ingress),
    ]
    parts += [_direction_tree(hop, "on the way, host endpoint: ") for hop in verdict.hops]
    logs = verdict.egress.logs + verdict.ingress.logs + tuple(log for hop in verdict.hops for log in hop.logs)
    if logs:
        parts.append(Text("Log hits: " + "; ".join(str(r) for r in logs), style="cyan"))
    if verdict.staged is not None:
        change = "would change" if verdict.would_change else "no change"
        parts.append(Text.assemble("with staged policies enforced: ", _word(verdict.staged.allowed), f" ({change})"))
        if verdict.would_change:
            parts += [_direction_tree(verdict.staged.egress), _direction_tree(verdict.staged.ingress)]
    return Group(*parts)


def _rule_json(ref: RuleRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"policy": ref.policy, "tier": ref.tier, "rule": ref.index, "action": ref.action.value, "staged": ref.staged}


def _direction_json(trace: DirectionTrace) -> dict[str, Any]:
    return {
        "direction": trace.direction.value,
        "endpoint": trace.endpoint,
        "allowed": trace.allowed,
        "reason": trace.reason.name.lower(),
        "reason_text": trace.reason.value,
        "isolated": trace.reason not in (Reason.NOT_A_POD, Reason.NOT_ISOLATED, Reason.NOT_FORWARD_POLICED),
        "decided_by": _rule_json(trace.decided_by),
        "decided_in_tier": trace.decided_in_tier,
        "tiers": [
            {
                "tier": t.tier,
                "order": t.order,
                "declared": t.declared,
                "outcome": t.outcome.value,
                "policies": [
                    {
                        "policy": p.policy,
                        "order": p.order,
                        "staged": p.staged,
                        "outcome": p.outcome.value,
                        "rule": _rule_json(p.rule),
                        "logs": [_rule_json(r) for r in p.logs],
                    }
                    for p in t.policies
                ],
            }
            for t in trace.tiers
        ],
        "logs": [_rule_json(r) for r in trace.logs],
        "notes": list(trace.notes),
    }


def to_json(verdict: Verdict) -> dict[str, Any]:
    f = verdict.flow
    out: dict[str, Any] = {
        "flow": {
            "src": str(f.src),
            "dst": str(f.dst),
            "protocol": f.protocol,
            "port": f.port,
            "icmp_type": f.icmp_type,
            "icmp_code": f.icmp_code,
        },
        "allowed": verdict.allowed,
        "egress": _direction_json(verdict.egress),
        "ingress": _direction_json(verdict.ingress),
        "host_endpoints": [_direction_json(hop) for hop in verdict.hops],
        "staged": None,
    }
    if verdict.staged is not None:
        out["staged"] = {
            "allowed": verdict.staged.allowed,
            "would_change": verdict.would_change,
            "egress": _direction_json(verdict.staged.egress),
            "ingress": _direction_json(verdict.staged.ingress),
        }
    return out


__all__ = ["render", "to_json"]
