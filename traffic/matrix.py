"""Expected against measured: which pairs to probe, and the records, counts and JSON of a reachability matrix.

Pure: the probing itself is `traffic.probes`; the pictures are `traffic.matrix_render`. For large worlds the
default probes every expected-allowed pair (each one is a promise the lab makes) plus a stratified sample of
expected-denied pairs: strata are (source group, destination group), each gets a share proportional to its
size and at least one probe, so no namespace pair goes unchecked.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from traffic.model import ProbeEndpoint, ProbeResult, Protocol

FULL_UP_TO = 20_000
"""Worlds with at most this many pairs are probed in full unless a sample size is given."""
DEFAULT_DENIED_SAMPLE = 100_000

Pair = tuple[ProbeEndpoint, ProbeEndpoint]


def all_pairs(endpoints: Sequence[ProbeEndpoint]) -> list[Pair]:
    """Every ordered pair of distinct endpoints, sources and destinations in (group, name) order."""
    ordered = sorted(endpoints, key=lambda e: (e.group, e.name))
    return [(a, b) for a in ordered for b in ordered if a is not b]


def all_pair_indices(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """`all_pairs` of n endpoints already in (group, name) order, as index arrays: (sources, destinations)."""
    if n < 2:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    sources = np.repeat(np.arange(n, dtype=np.intp), n - 1)
    others = np.tile(np.arange(n - 1, dtype=np.intp), n)
    return sources, others + (others >= sources)  # every other endpoint: skip the source itself


def filter_groups(endpoints: Sequence[ProbeEndpoint], groups: set[str] | None) -> list[ProbeEndpoint]:
    return list(endpoints) if not groups else [e for e in endpoints if e.group in groups]


def select_pairs(
    pairs: Sequence[Pair], expected: Sequence[bool], sample: int | None = None, full: bool = False,
    seed: int = 0,
) -> list[int]:
    """Indices of the pairs to probe, in their original order.

    `full`: all. Otherwise every expected-allowed pair plus `sample` expected-denied ones (default: all of
    them for worlds up to FULL_UP_TO pairs, else DEFAULT_DENIED_SAMPLE), stratified by group pair.
    """
    if full:
        return list(range(len(pairs)))
    if sample is None:
        sample = len(pairs) if len(pairs) <= FULL_UP_TO else DEFAULT_DENIED_SAMPLE
    allowed = [i for i, ok in enumerate(expected) if ok]
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, ok in enumerate(expected):
        if not ok:
            strata[(pairs[i][0].group, pairs[i][1].group)].append(i)
    denied = stratified_sample(strata, sample, random.Random(seed))
    return sorted(allowed + denied)


def stratified_sample(strata: dict[Any, list[int]], k: int, rng: random.Random) -> list[int]:
    """About `k` members over the strata in proportion to their sizes (largest remainders), at least one
    from each stratum when k allows it, never more than a stratum holds."""
    total = sum(len(m) for m in strata.values())
    if k >= total:
        return [i for members in strata.values() for i in members]
    if k <= 0 or not strata:
        return []
    keys = sorted(strata, key=str)
    quota = {key: k * len(strata[key]) / total for key in keys}
    take = {key: int(quota[key]) for key in keys}
    if k >= len(keys):
        for key in keys:
            take[key] = max(1, take[key])
        while sum(take.values()) > k:  # the minimums overshot: take back from the biggest shares
            biggest = max(keys, key=lambda key: (take[key], str(key)))
            take[biggest] -= 1
    left = k - sum(take.values())
    for key in sorted(keys, key=lambda key: quota[key] - int(quota[key]), reverse=True):
        if left <= 0:
            break
        if take[key] < len(strata[key]):
            take[key] += 1
            left -= 1
    chosen: list[int] = []
    for key in keys:
        members = strata[key]
        chosen += rng.sample(members, min(take[key], len(members)))
    return chosen


def verdict(allowed: bool) -> str:
    return "allow" if allowed else "deny"


@dataclass(frozen=True)
class MatrixRecord:
    src: str
    dst: str
    src_group: str
    dst_group: str
    protocol: str
    port: int
    expected: str
    measured: str
    rtt_us: float | None
    evidence: str

    @property
    def mismatch(self) -> bool:
        return self.expected != self.measured

    def to_json(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict: a 1500-service matrix has over 100,000 records
        return {"src": self.src, "dst": self.dst, "protocol": self.protocol, "port": self.port,
                "expected": self.expected, "measured": self.measured, "rtt_us": self.rtt_us,
                "evidence": self.evidence}


@dataclass(frozen=True)
class MatrixReport:
    protocol: Protocol
    port: int
    records: tuple[MatrixRecord, ...]
    total_pairs: int
    sampled: bool

    @property
    def mismatches(self) -> int:
        return sum(r.mismatch for r in self.records)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.value,
            "port": self.port,
            "total_pairs": self.total_pairs,
            "probed": len(self.records),
            "sampled": self.sampled,
            "mismatches": self.mismatches,
            "records": [r.to_json() for r in self.records],
        }


def build_report(
    pairs: Sequence[Pair], expected: Sequence[bool], results: Sequence[ProbeResult], protocol: Protocol,
    port: int, total_pairs: int,
) -> MatrixReport:
    """Records in probe order; `pairs`, `expected` and `results` are parallel."""
    records = tuple(
        MatrixRecord(
            src=a.name, dst=b.name, src_group=a.group, dst_group=b.group, protocol=protocol.value,
            port=port if protocol.has_ports else 0, expected=verdict(ok), measured=result.verdict,
            rtt_us=None if result.rtt_us is None else round(result.rtt_us, 1), evidence=result.evidence,
        )
        for (a, b), ok, result in zip(pairs, expected, results, strict=True)
    )
    return MatrixReport(protocol, port, records, total_pairs, sampled=len(records) < total_pairs)


def group_summary(report: MatrixReport) -> list[dict[str, Any]]:
    """Per (source group, destination group): probed, expected/measured allowed, mismatches."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in report.records:
        row = rows.setdefault((r.src_group, r.dst_group), {
            "src_group": r.src_group, "dst_group": r.dst_group, "probed": 0, "expected_allow": 0,
            "measured_allow": 0, "mismatches": 0})
        row["probed"] += 1
        row["expected_allow"] += r.expected == "allow"
        row["measured_allow"] += r.measured == "allow"
        row["mismatches"] += r.mismatch
    return [rows[key] for key in sorted(rows)]
