"""Compile and render new policies for the lab's dataplane before the store takes them.

A policy that validates but cannot be programmed (text a renderer refuses, a set a backend cannot hold)
must be refused like any invalid input, not discovered while hosts are being programmed. Each policy is
compiled on its own into a HostProgram (its sets empty: membership never makes a program unrenderable) and
checked by the lab's backend (`Backend.check`: rendered as an apply would, no kernel touched).
"""

from __future__ import annotations

from collections.abc import Iterable

from policy_dataplane.dataplane.backend import Backend
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


def unprogrammable(policies: Iterable[Policy], backend: Backend) -> list[str]:
    """'policy: why' for every policy the backend could not be given."""
    problems = []
    for policy in policies:
        try:
            backend.check(policy_program(policy))
        except (UnsafeText, ValueError) as exc:
            problems.append(f"{policy.name}: cannot be programmed with {backend.name}: {exc}")
    return problems


__all__ = ["unprogrammable", "policy_program"]
