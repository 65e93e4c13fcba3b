"""How big a lab and its inputs may be, checked before anything is built or read in full.

Each limit protects the machine (namespaces, memory, minutes of work) from a typo or a hostile file: a
`hosts: 100000` lab would otherwise create thousands of namespaces before anything objects. The defaults
suit a laptop with 2 cores; raise them per lab in the lab file:

    limits: {hosts: 200, pods: 20000}

or for every lab (and for reading the lab file itself) with the environment:

    NETPOL_LAB_LIMITS="pods=20000,fileBytes=67108864"
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from policy_dataplane.policy.safeyaml import DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES

LIMITS_ENV = "NETPOL_LAB_LIMITS"


@dataclass(frozen=True)
class Limits:
    hosts: int = 64  # hosts of one lab (each a namespace, a BGP speaker and a route agent)
    pods: int = 5000  # pods of one lab (each a namespace and a veth pair)
    externals: int = 64  # external servers
    policies: int = 5000  # policies stored in one lab (all kinds together)
    rules: int = 500  # ingress plus egress rules of one policy
    fileBytes: int = DEFAULT_MAX_BYTES  # size of one lab or policy file
    yamlNodes: int = DEFAULT_MAX_NODES  # YAML nodes of one file, aliases expanded

    def raised(self, changes: dict[str, Any] | None) -> "Limits":
        return replace(self, **(changes or {}))


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


class LimitsError(ValueError):
    pass


def default_limits() -> Limits:
    """The built-in limits, with what NETPOL_LAB_LIMITS sets (`name=value,name=value`)."""
    text = os.environ.get(LIMITS_ENV, "").strip()
    if not text:
        return Limits()
    changes: dict[str, int] = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        if name not in LIMIT_NAMES or not value.strip().isdigit() or int(value) < 1:
            raise LimitsError(f"{LIMITS_ENV}: {part.strip()!r} must be NAME=N with N >= 1 and NAME one of "
                              f"{', '.join(LIMIT_NAMES)}")
        changes[name] = int(value)
    return Limits().raised(changes)


__all__ = ["Limits", "LimitsError", "default_limits", "LIMIT_NAMES", "LIMITS_ENV"]
