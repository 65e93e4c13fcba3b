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

from traffic.model import ProbeEndpoint, ProbeResult

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
               results: Sequence[ProbeResult]) -> dict[str, Any]:
    """Per (source group, destination group): probed, measured allowed and mismatches, as square grids."""
    groups = sorted({e.group for pair in pairs for e in pair})
    index = {g: i for i, g in enumerate(groups)}
    n = len(groups)
    probed = [[0] * n for _ in groups]
    allowed = [[0] * n for _ in groups]
    mismatches = [[0] * n for _ in groups]
    for (a, b), ok, result in zip(pairs, expected, results, strict=True):
        i, j = index[a.group], index[b.group]
        probed[i][j] += 1
        allowed[i][j] += result.delivered
        mismatches[i][j] += result.delivered != ok
    return {"groups": groups, "probed": probed, "allowed": allowed, "mismatches": mismatches}


def verify_all(lab: str, port: int, filtered: bool = True,
               progress: Callable[[int, int, str], None] | None = None) -> Verification:
    """`filtered` False (the `none` dataplane): every pair is expected to be delivered."""
    from lab.runtime import expected_verdicts, probe_endpoints
    from traffic.matrix import all_pairs
    from traffic.model import Probe, Protocol
    from traffic.probes import ProbeEngine, ProbeOptions

    out = Verification()
    started = time.perf_counter()
    pods = [e for e in probe_endpoints(lab) if e.kind == "pod"]
    pairs = all_pairs(pods)
    out.pairs = len(pairs)
    probes = [Probe(a, b, Protocol.TCP, port) for a, b in pairs]
    out.prepare_s = time.perf_counter() - started
    started = time.perf_counter()
    expected = expected_verdicts(lab, pairs, "tcp", port) if filtered else [True] * len(pairs)
    out.oracle_s = time.perf_counter() - started
    with ProbeEngine(ProbeOptions(reply_timeout=REPLY_TIMEOUT)) as engine:
        started = time.perf_counter()
        # TCP answers come back to the source: a sender and capture sockets in every pod (one probe each
        # says so, instead of scanning millions)
        engine.prepare(Probe(p, p, Protocol.TCP, port) for p in pods)
        out.prepare_s += time.perf_counter() - started
        session = engine.session()
        burst = engine.options.burst
        chunk = max(burst, len(probes) // 50)
        started = time.perf_counter()
        for start in range(0, len(probes), burst):
            for probe in probes[start:start + burst]:
                session.send(probe)
            session.drain(0.0)
            if progress and start % chunk < burst:
                progress(start, len(probes), "verify: probes sent")
        # answers still on their way: read until none is outstanding but the dropped ones
        expected_answers = sum(expected)
        settle = time.perf_counter()
        while session.outstanding > len(probes) - expected_answers and time.perf_counter() - settle < REPLY_TIMEOUT:
            session.drain(0.01)
        out.probing_s = time.perf_counter() - started
        started = time.perf_counter()
        session.wait(REPLY_TIMEOUT)
        out.waited_s = time.perf_counter() - started
        results = session.results()
    if progress:
        progress(len(probes), len(probes), "verify: probes sent")
    out.delivered = sum(r.delivered for r in results)
    out.mismatches = sum(r.delivered != ok for r, ok in zip(results, expected, strict=True))
    out.heatmap = group_grid(pairs, expected, results)
    return out


__all__ = ["Verification", "verify_all", "group_grid", "REPLY_TIMEOUT"]
