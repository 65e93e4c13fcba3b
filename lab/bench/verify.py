"""Verification figures: every ordered pair of the bank's services probed on the service port by real
packets (not a sample), each compared with the oracle; probes per second and the time to verify it all.

With no filter (`none`) every pair is delivered, so that is what is expected there. The heat map keeps, per
(source namespace, destination namespace), the pairs probed, measured allowed and mismatching.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from traffic.model import ProbeEndpoint

REPLY_TIMEOUT = 1.0  # seconds to wait for answers after the last probe: what is still missing was dropped


@dataclass
class Verification:
    pairs: int = 0
    mismatches: int = 0
    delivered: int = 0
    oracle_s: float = 0.0  # expected verdicts of every pair (one bulk matrix)
    prepare_s: float = 0.0  # the pairs and their probes listed, probe sockets opened in every pod
    probing_s: float = 0.0  # every probe sent and every answer read, not the final wait for the dropped
    waited_s: float = 0.0  # that final wait
    heatmap: dict[str, Any] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.oracle_s + self.prepare_s + self.probing_s + self.waited_s

    @property
    def probes_per_s(self) -> float:
        return self.pairs / self.probing_s if self.probing_s > 0 else float("nan")


def group_grid(pairs: Sequence[tuple[ProbeEndpoint, ProbeEndpoint]], expected: Sequence[bool],
               delivered: npt.ArrayLike) -> dict[str, Any]:
    """Per (source group, destination group): probed, measured allowed and mismatches, as square grids."""
    groups = sorted({e.group for pair in pairs for e in pair})
    index = {g: i for i, g in enumerate(groups)}
    n = len(groups)
    cell = np.fromiter((index[a.group] * n + index[b.group] for a, b in pairs), dtype=np.int64, count=len(pairs))
    measured = np.asarray(delivered, dtype=bool)
    wrong = measured != np.asarray(expected, dtype=bool)

    def grid(weights: Any) -> list[list[int]]:
        return np.bincount(cell, weights=weights, minlength=n * n).astype(np.int64).reshape(n, n).tolist()

    return {"groups": groups, "probed": grid(None), "allowed": grid(measured), "mismatches": grid(wrong)}


def verify_all(lab: str, port: int, filtered: bool = True,
               progress: Callable[[int, int, str], None] | None = None) -> Verification:
    """`filtered` False (the `none` dataplane): every pair is expected to be delivered."""
    from lab.traffic_hooks import expected_verdicts, probe_endpoints
    from traffic.bulk import BulkTcpProbe
    from traffic.matrix import all_pair_indices, all_pairs
    from traffic.probes import ProbeEngine, ProbeOptions

    out = Verification()
    started = time.perf_counter()
    pods = sorted((e for e in probe_endpoints(lab) if e.kind == "pod"), key=lambda e: (e.group, e.name))
    pairs = all_pairs(pods)  # sources and destinations in the same order as `pods`
    sources, destinations = all_pair_indices(len(pods))
    out.pairs = len(pairs)
    out.prepare_s = time.perf_counter() - started
    started = time.perf_counter()
    expected = expected_verdicts(lab, pairs, "tcp", port) if filtered else [True] * len(pairs)
    out.oracle_s = time.perf_counter() - started
    with ProbeEngine(ProbeOptions(reply_timeout=REPLY_TIMEOUT)) as engine:
        started = time.perf_counter()
        # TCP answers come back to the source: a sender and capture sockets in every pod, packets built
        bulk = BulkTcpProbe(engine, pods, sources, destinations, port)
        out.prepare_s += time.perf_counter() - started
        started = time.perf_counter()
        bulk.send_all(progress=lambda done, total: progress(done, total, "verify: probes sent") if progress else None)
        # answers still on their way: read until none is outstanding but the dropped ones
        bulk.wait(REPLY_TIMEOUT, expected_answers=sum(expected))
        out.probing_s = time.perf_counter() - started
        started = time.perf_counter()
        bulk.wait(REPLY_TIMEOUT)
        out.waited_s = time.perf_counter() - started
        delivered = bulk.results.delivered
    if progress:
        progress(len(pairs), len(pairs), "verify: probes sent")
    out.delivered = int(delivered.sum())
    out.mismatches = int((delivered != np.asarray(expected, dtype=bool)).sum())
    out.heatmap = group_grid(pairs, expected, delivered)
    return out


__all__ = ["Verification", "verify_all", "group_grid", "REPLY_TIMEOUT"]
