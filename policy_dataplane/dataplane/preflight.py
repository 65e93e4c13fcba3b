"""Compile and render new policies for the lab's dataplane before the store takes them.

A policy that validates but cannot be programmed (text a renderer refuses, a set a backend cannot hold)
must be refused like any invalid input, not discovered while hosts are being programmed. Each policy is
compiled on its own into a HostProgram (its sets empty: membership never makes a program unrenderable) and
rendered with the backend's renderer. Pure: nothing here touches the kernel.
"""

from __future__ import annotations

from collections.abc import Iterable

from policy_dataplane.dataplane.compile import _Needs, compile_policy
from policy_dataplane.dataplane.hostprogram import Dir, HostProgram
from policy_dataplane.policy.model import Direction, Policy
from topology.kernel_text import UnsafeText

DIRS = {Direction.INGRESS: Dir.INGRESS, Direction.EGRESS: Dir.EGRESS}


def policy_program(policy: Policy) -> HostProgram:
    needs = _Needs()
    chains = [compile_policy(policy, DIRS[d], needs) for d in sorted(policy.types, key=lambda d: d.value)]
    return HostProgram(
        address_sets={**needs.nets, **{f"s-{sid}": frozenset() for sid in needs.selectors}},
        named_port_sets={name: frozenset() for name in needs.named_ports},
        policies={c.chain: c for c in chains},
    )


def render(program: HostProgram, backend: str) -> None:
    program.check()
    if backend == "none":  # no filter is programmed at all
        return
    if backend == "iptables":
        from policy_dataplane.dataplane.iptables.render import render_ipset_full, render_iptables_full

        render_ipset_full(program)
        render_iptables_full(program)
    else:
        from policy_dataplane.dataplane.nft.render import render_full

        render_full(program)


def unprogrammable(policies: Iterable[Policy], backend: str) -> list[str]:
    """'policy: why' for every policy the backend could not be given."""
    problems = []
    for policy in policies:
        try:
            render(policy_program(policy), backend)
        except (UnsafeText, ValueError) as exc:
            problems.append(f"{policy.name}: cannot be programmed with {backend}: {exc}")
    return problems


__all__ = ["unprogrammable", "policy_program"]
