"""Pair selection (every expected allow, a stratified sample of expected denies), records and JSON."""

from __future__ import annotations

import random
from collections import Counter
from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from traffic.matrix import (
    all_pairs,
    build_report,
    filter_groups,
    group_summary,
    select_pairs,
    stratified_sample,
)
from traffic.matrix_render import HEAT_CODES, heat_codes
from traffic.model import Probe, ProbeEndpoint, ProbeResult, Protocol


def endpoints(per_namespace: dict[str, int]) -> list[ProbeEndpoint]:
    out, n = [], 0
    for ns, count in per_namespace.items():
        for i in range(count):
            n += 1
            out.append(ProbeEndpoint(f"{ns}/p{i}", f"netns-{n}", IPv4Address(0x0A000000 + n)))
    return out


def test_all_pairs_are_ordered_distinct_and_grouped() -> None:
    eps = endpoints({"b": 2, "a": 3})
    pairs = all_pairs(eps)
    assert len(pairs) == 5 * 4 and all(a is not b for a, b in pairs)
    assert [a.group for a, _ in pairs][:4] == ["a"] * 4  # groups sorted
    assert [e.name for e in filter_groups(eps, {"b"})] == ["b/p0", "b/p1"]


def test_small_worlds_are_probed_in_full_by_default() -> None:
    pairs = all_pairs(endpoints({"a": 5, "b": 5}))
    expected = [random.Random(1).random() < 0.3 for _ in pairs]
    assert select_pairs(pairs, expected) == list(range(len(pairs)))


def test_sample_keeps_every_allowed_pair_and_k_denied_spread_over_strata() -> None:
    pairs = all_pairs(endpoints({"a": 10, "b": 10, "c": 2}))
    rng = random.Random(7)
    expected = [rng.random() < 0.2 for _ in pairs]
    chosen = select_pairs(pairs, expected, sample=60)
    allowed = {i for i, ok in enumerate(expected) if ok}
    assert allowed <= set(chosen)
    denied = [i for i in chosen if not expected[i]]
    assert len(denied) == 60
    strata = Counter((pairs[i][0].group, pairs[i][1].group) for i in denied)
    assert len(strata) == 9  # every (src ns, dst ns) with denied pairs got at least one probe
    assert chosen == sorted(chosen)
    assert select_pairs(pairs, expected, sample=60) == chosen  # deterministic for a seed


@given(st.dictionaries(st.integers(0, 20), st.integers(1, 50), min_size=1), st.integers(0, 500))
def test_stratified_sample_size_and_bounds(sizes: dict[int, int], k: int) -> None:
    strata = {key: [key * 1000 + i for i in range(n)] for key, n in sizes.items()}
    chosen = stratified_sample(strata, k, random.Random(0))
    total = sum(sizes.values())
    assert len(chosen) == len(set(chosen)) == min(k, total)
    assert set(chosen) <= {m for members in strata.values() for m in members}
    if k >= len(sizes):
        assert {c // 1000 for c in chosen} == set(sizes)


def test_report_counts_mismatches_and_serialises() -> None:
    eps = endpoints({"a": 2, "b": 1})
    pairs = all_pairs(eps)
    expected = [True, False, True, True, False, False]
    measured = [True, True, True, False, False, False]
    results = [ProbeResult(Probe(a, b, Protocol.TCP, 80), m, m, 12.345 if m else None, "rst" if m else "nothing")
               for (a, b), m in zip(pairs, measured)]
    report = build_report(pairs, expected, results, Protocol.TCP, 80, total_pairs=6)
    assert report.mismatches == 2 and not report.sampled
    data = report.to_json()
    assert data["mismatches"] == 2 and data["probed"] == 6
    assert data["records"][0] == {"src": "a/p0", "dst": "a/p1", "protocol": "tcp", "port": 80,
                                  "expected": "allow", "measured": "allow", "rtt_us": 12.3, "evidence": "rst"}
    rows = {(r["src_group"], r["dst_group"]): r for r in group_summary(report)}
    assert rows[("a", "b")]["mismatches"] == 2
    order, grid = heat_codes(report)
    assert [name for _, name in order] == ["a/p0", "a/p1", "b/p0"]
    assert grid[0][0] == 0  # never probed: self
    assert grid[0][2] == HEAT_CODES[("deny", "allow")]
