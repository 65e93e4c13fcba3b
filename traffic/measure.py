"""Experiments that probe: the reachability matrix (expected from a callback, measured with packets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from traffic.matrix import MatrixReport, Pair, all_pairs, build_report, filter_groups, select_pairs
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.probes import ProbeEngine

ExpectFn = Callable[[list[Pair], Protocol, int], list[bool]]
"""expected(pairs, protocol, port) -> one bool per pair (True: the policy allows it); the oracle's job."""


def measure_matrix(
    engine: ProbeEngine,
    endpoints: Sequence[ProbeEndpoint],
    expected: ExpectFn,
    protocol: Protocol,
    port: int,
    groups: set[str] | None = None,
    sample: int | None = None,
    full: bool = False,
    seed: int = 0,
) -> MatrixReport:
    """Probe the chosen pairs once each and compare with the expectation. Only `engine` touches the kernel."""
    pairs = all_pairs(filter_groups(endpoints, groups))
    verdicts = list(expected(pairs, protocol, port))
    if len(verdicts) != len(pairs):
        raise ValueError(f"expected {len(pairs)} verdicts, got {len(verdicts)}")
    chosen = select_pairs(pairs, verdicts, sample=sample, full=full, seed=seed)
    probe_pairs = [pairs[i] for i in chosen]
    results = engine.run([Probe(a, b, protocol, port) for a, b in probe_pairs])
    return build_report(probe_pairs, [verdicts[i] for i in chosen], results, protocol, port, len(pairs))
