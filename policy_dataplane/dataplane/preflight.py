"""Compile and render new policies for the lab's dataplane before the store takes them.

A policy that validates but cannot be programmed (text a renderer refuses, a set a backend cannot hold)
must be refused like any invalid input, not discovered while hosts are being programmed. Two passes, both
checked by the lab's backend (`Backend.check`: rendered as an apply would, no kernel touched):
`unprogrammable` compiles each new policy on its own (its sets empty), before anything else looks at the
change, so each problem names its policy; `unprogrammable_hosts` checks every host's whole program as the
world would be after the change (lab/apply.py compiles it inside the store transaction that would commit
it), which is what host endpoints, node programs and filled sets need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def unprogrammable_hosts(programs: Mapping[str, HostProgram], backend: Backend) -> list[str]:
    """'host: why' for every host whose whole program the backend could not be given: what one policy
    alone cannot show (host endpoints and the node's program, named ports filled with their pods, sets
    with their members)."""
    problems = []
    for host, program in sorted(programs.items()):
        try:
            backend.check(program)
        except (UnsafeText, ValueError) as exc:
            problems.append(f"host {host}: the lab's program cannot be given to it with {backend.name}: {exc}")
    return problems


def unprogrammable(policies: Iterable[Policy], backend: Backend) -> list[str]:
    """'policy: why' for every policy the backend could not be given."""
    problems = []
    for policy in policies:
        try:
            backend.check(policy_program(policy))
        except (UnsafeText, ValueError) as exc:
            problems.append(f"{policy.name}: cannot be programmed with {backend.name}: {exc}")
    return problems


__all__ = ["policy_program", "unprogrammable", "unprogrammable_hosts"]
