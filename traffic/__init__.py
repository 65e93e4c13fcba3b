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

from traffic.measure import measure_latency, measure_matrix
from traffic.model import Probe, ProbeEndpoint, ProbeResult, Protocol, find_endpoint
from traffic.policy_latency import AffectedPath, Change, ChangeOutcome, summarise
from traffic.probes import ProbeEngine, ProbeOptions, run_probes
from traffic.stream import StreamOptions, run_change, run_experiment

__all__ = [
    "AffectedPath", "Change", "ChangeOutcome", "Probe", "ProbeEndpoint", "ProbeEngine", "ProbeOptions",
    "ProbeResult", "Protocol", "StreamOptions", "find_endpoint", "measure_latency", "measure_matrix",
    "run_change", "run_experiment", "run_probes", "summarise",
]
