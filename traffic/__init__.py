"""netpol-lab: traffic. Real packets through the real dataplane: probes, matrices, latency, policy latency.

Modules, one job each:
- model: ProbeEndpoint, Probe, ProbeResult, Protocol (the shared vocabulary)
- packets / checksum: probe packets built once with Scapy, patched per probe (pure)
- answers: captured packet -> (token, probe src, probe dst, evidence) (pure)
- netns: sockets opened inside a namespace from a setns thread
- probes: ProbeEngine / ProbeSession, the send-and-capture engine (the only module that sends)
- matrix (pure), matrix_render (rich, PNG), measure: expected vs measured matrices, latency runs
- latency (pure), latency_render: RTT percentiles by path class, histogram PNG
- policy_latency (pure), stream, changes, policy_latency_render: time from a write to enforcement
- scratch_lab: a throwaway lab built by the topology engine, static routes instead of BGP (tests, benchmarks)
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported when first used (PEP 562): `from traffic.model import Protocol`, which every CLI start-up does for
# its options, then does not pull Scapy and the probe engine in.
_EXPORTS = {
    "measure_latency": "traffic.measure", "measure_matrix": "traffic.measure",
    "Probe": "traffic.model", "ProbeEndpoint": "traffic.model", "ProbeResult": "traffic.model",
    "Protocol": "traffic.model", "find_endpoint": "traffic.model",
    "AffectedPath": "traffic.policy_latency", "Change": "traffic.policy_latency",
    "ChangeOutcome": "traffic.policy_latency", "summarise": "traffic.policy_latency",
    "ProbeEngine": "traffic.probes", "ProbeOptions": "traffic.probes", "run_probes": "traffic.probes",
    "StreamOptions": "traffic.stream", "run_change": "traffic.stream", "run_experiment": "traffic.stream",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'traffic' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
