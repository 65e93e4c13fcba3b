"""Experiments that probe: the reachability matrix (expected from a callback, measured with packets) and RTT
distributions by path class under named conditions (e.g. with and without policy)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from traffic.latency import path_class, summarise_rtts
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
    destinations: Sequence[ProbeEndpoint] | None = None,
) -> MatrixReport:
    """Probe the chosen pairs once each and compare with the expectation. Only `engine` touches the kernel.
    With `destinations`, every endpoint (of the groups) is a source towards each of them only."""
    sources = filter_groups(endpoints, groups)
    pairs = all_pairs(sources) if destinations is None else [(s, d) for d in destinations for s in sources]
    verdicts = list(expected(pairs, protocol, port))
    if len(verdicts) != len(pairs):
        raise ValueError(f"expected {len(pairs)} verdicts, got {len(verdicts)}")
    chosen = select_pairs(pairs, verdicts, sample=sample, full=full, seed=seed)
    probe_pairs = [pairs[i] for i in chosen]
    results = engine.run([Probe(a, b, protocol, port) for a, b in probe_pairs])
    return build_report(probe_pairs, [verdicts[i] for i in chosen], results, protocol, port, len(pairs))


Condition = Callable[[], AbstractContextManager[object]]
"""A state of the lab to measure in: entering it sets it up (e.g. applies a policy), leaving undoes it."""


@dataclass(frozen=True)
class LatencyRun:
    protocol: Protocol
    port: int
    count: int
    samples: dict[str, dict[str, list[float]]]  # condition -> path class -> RTTs (µs)
    dropped: dict[str, dict[str, int]]

    def summary(self) -> dict[str, dict[str, dict[str, float | int]]]:
        return summarise_rtts(self.samples, self.dropped)

    def to_json(self) -> dict[str, object]:
        return {"protocol": self.protocol.value, "port": self.port, "count": self.count,
                "conditions": self.summary()}


def measure_latency(
    engine: ProbeEngine,
    pairs: Sequence[Pair],
    protocol: Protocol,
    port: int,
    count: int,
    conditions: Mapping[str, Condition] | None = None,
) -> LatencyRun:
    """`count` probes per pair per condition, sent in rounds (every pair once per round), RTTs grouped by
    same-host / cross-host."""
    conditions = conditions or {"as-is": nullcontext}
    probes = [Probe(a, b, protocol, port) for _ in range(count) for a, b in pairs]
    engine.prepare(probes)
    samples: dict[str, dict[str, list[float]]] = {}
    dropped: dict[str, dict[str, int]] = {}
    for name, condition in conditions.items():
        with condition():
            results = engine.run(probes)
        samples[name] = defaultdict(list)
        dropped[name] = defaultdict(int)
        for result in results:
            klass = path_class(result.probe.src.host, result.probe.dst.host)
            if result.rtt_us is None:
                dropped[name][klass] += 1
            else:
                samples[name][klass].append(result.rtt_us)
        samples[name], dropped[name] = dict(samples[name]), dict(dropped[name])
    return LatencyRun(protocol, port, count, samples, dropped)
