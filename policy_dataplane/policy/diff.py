"""Semantic diff of two worlds: the flows whose verdict changes, from whole matrices (no packets).

`lab diff -f NEW.yaml` uses it as a dry run: the lab's world as it is against the world with the files
applied (or deleted), over the same endpoints, for every (protocol, port) something listens on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from policy_dataplane.policy.bulk import matrix
from policy_dataplane.policy.world import World


@dataclass(frozen=True)
class FlowChange:
    src: str
    dst: str
    protocol: str
    port: int | None
    before: bool
    after: bool

    def as_dict(self) -> dict[str, object]:
        return {"src": self.src, "dst": self.dst, "protocol": self.protocol, "port": self.port,
                "before": "allow" if self.before else "deny", "after": "allow" if self.after else "deny"}


PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}


def verdict_changes(before: World, after: World, refs: Sequence[str],
                    flows: Iterable[tuple[str, int | None]]) -> list[FlowChange]:
    """Pairs of `refs` (pods as `ns/name`, externals as IPs) whose verdict differs between the worlds. A pod
    talking to itself is left out: that traffic never leaves its namespace, no filter sees it."""
    changes: list[FlowChange] = []
    refs = list(refs)
    for protocol, port in flows:
        old = matrix(before, protocol, port, list(refs)).allowed
        new = matrix(after, protocol, port, list(refs)).allowed
        differ = old != new
        np.fill_diagonal(differ, False)
        rows, cols = np.nonzero(differ)
        was = old[rows, cols].tolist()  # one conversion per array: millions of changes stay fast
        changes += [FlowChange(refs[i], refs[j], protocol, port, w, not w)
                    for i, j, w in zip(rows.tolist(), cols.tolist(), was, strict=True)]
    return changes


__all__ = ["FlowChange", "PROTOCOL_NAMES", "verdict_changes"]
