"""RTT distributions: percentiles and groups (same-host / cross-host), pure; the histogram PNG at the edge."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from traffic.model import ProbeEndpoint


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100); NaN when there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    ordered = sorted(values)
    return {f"p{q}": percentile(ordered, q) for q in qs}


SAME_HOST = "same-host"
CROSS_HOST = "cross-host"
UNKNOWN_PATH = "unknown"


def path_class(src_host: str | None, dst_host: str | None) -> str:
    """Same-host paths cross one host's forwarding; cross-host paths also cross the fabric."""
    if not src_host or not dst_host:
        return UNKNOWN_PATH
    return SAME_HOST if src_host == dst_host else CROSS_HOST


def summarise_rtts(samples: dict[str, dict[str, list[float]]], dropped: dict[str, dict[str, int]]
                   ) -> dict[str, dict[str, dict[str, float | int]]]:
    """{condition: {path class: {samples, dropped, p50, p90, p99, mean}}} from raw RTTs (µs)."""
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for condition, classes in samples.items():
        out[condition] = {}
        for klass in sorted(set(classes) | set(dropped.get(condition, {}))):
            values = classes.get(klass, [])
            row: dict[str, float | int] = {"samples": len(values), "dropped": dropped.get(condition, {}).get(klass, 0)}
            row.update(percentiles(values))
            row["mean"] = sum(values) / len(values) if values else math.nan
            out[condition][klass] = row
    return out


def latency_pairs(endpoints: Sequence[ProbeEndpoint], per_class: int, seed: int = 0,
                  keep: Callable[[list[tuple[ProbeEndpoint, ProbeEndpoint]]], list[bool]] | None = None,
                  ) -> list[tuple[ProbeEndpoint, ProbeEndpoint]]:
    """Up to `per_class` pod pairs of each path class, spread over sources (deterministic for a seed);
    with `keep` (e.g. the oracle's verdicts), only pairs it keeps."""
    pods = sorted((e for e in endpoints if e.kind == "pod"), key=lambda e: e.name)
    rng = random.Random(seed)
    by_class: dict[str, list[tuple[ProbeEndpoint, ProbeEndpoint]]] = {}
    for a in pods:
        for b in pods:
            if a is not b:
                by_class.setdefault(path_class(a.host, b.host), []).append((a, b))
    chosen = []
    for klass in sorted(by_class):
        candidates = by_class[klass]
        if keep is not None:
            candidates = [pair for pair, kept in zip(candidates, keep(candidates), strict=True) if kept]
        chosen += rng.sample(candidates, min(per_class, len(candidates)))
    return chosen
