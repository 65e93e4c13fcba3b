"""Per-packet cost: RTT between pods with 0, 10, 50 and 100% of the bank's policies programmed.

The lab keeps its pods and endpoints; only the policies are cut to the first k% (by name) for the run, and
the store's policies are programmed back afterwards, even when the run fails (as `lab latency` lifts them).
The pairs are ones the full bank allows, so every subset allows them too (Kubernetes policies only allow).
- new flow: a TCP SYN probe each time (a new connection: dispatch, policy, conntrack entry), kernel-stamped;
- established: one TCP connection per pair to the pod's echo responder, a byte sent and read back each
  time (conntrack hits `established`: no policy is evaluated), timed around the two system calls.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from traffic.latency import percentiles
from traffic.model import ProbeEndpoint

if TYPE_CHECKING:
    from lab.runtime import LabRuntime
    from policy_dataplane.dataplane.lab_dataplane import Dataplane

FRACTIONS = (0, 10, 50, 100)
Pair = tuple[ProbeEndpoint, ProbeEndpoint]


@dataclass
class CostRun:
    fractions: list[int] = field(default_factory=list)
    policies: list[int] = field(default_factory=list)  # policies programmed at each fraction
    new_flow_us: list[list[float]] = field(default_factory=list)  # per fraction, every RTT
    established_us: list[list[float]] = field(default_factory=list)
    # new flows with only conntrack on every host (no dispatch, no policy): what any stateful filter costs
    conntrack_new_flow_us: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, list[float | int | None]]:
        def stat(samples: list[list[float]], q: str) -> list[float | int | None]:
            return [round(percentiles(s)[q], 1) if s else None for s in samples]

        return {"fractions": list(self.fractions), "policies": list(self.policies),
                "new_flow_p50_us": stat(self.new_flow_us, "p50"), "new_flow_p90_us": stat(self.new_flow_us, "p90"),
                "established_p50_us": stat(self.established_us, "p50"),
                "established_p90_us": stat(self.established_us, "p90"),
                "conntrack_new_flow_p50_us": stat([self.conntrack_new_flow_us], "p50")}


def new_flow_rtts(pairs: Sequence[Pair], port: int, count: int) -> list[float]:
    from traffic.model import Probe, Protocol
    from traffic.probes import ProbeEngine, ProbeOptions

    probes = [Probe(a, b, Protocol.TCP, port) for _ in range(count) for a, b in pairs]
    rtts: list[float] = []
    with ProbeEngine(ProbeOptions(reply_timeout=0.3, burst=1)) as engine:
        engine.prepare(probes)
        for start in range(0, len(probes), 50):  # small bursts: measure the path, not a queue
            rtts += [r.rtt_us for r in engine.run(probes[start:start + 50]) if r.delivered and r.rtt_us is not None]
    return rtts


def established_rtts(pairs: Sequence[Pair], port: int, count: int) -> list[float]:
    from topology.engines import get_engine

    rtts: list[float] = []
    for src, dst in pairs:
        conn = get_engine().call_in(src.netns, lambda: socket.create_connection((str(dst.ip), port), timeout=2.0))
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(count):
                started = time.perf_counter_ns()
                conn.sendall(b"x")
                if not conn.recv(16):
                    raise ConnectionError(f"{dst.name} closed the connection from {src.name}")
                rtts.append((time.perf_counter_ns() - started) / 1000.0)
        finally:
            conn.close()
    return rtts


def cost_pairs(lab: str, port: int, per_class: int) -> list[Pair]:
    """Same-host and cross-host pod pairs the lab's policy allows."""
    from lab.traffic_hooks import expected_verdicts, probe_endpoints
    from traffic.latency import latency_pairs

    return latency_pairs(probe_endpoints(lab), per_class=per_class,
                         keep=lambda candidates: expected_verdicts(lab, candidates, "tcp", port))


def measure_cost(lab: str, port: int, count: int, per_class: int = 3,
                 progress: Callable[[int, int, str], None] | None = None) -> CostRun:
    from lab import converge, warm
    from lab.runtime import LabRuntime
    from lab.stored_world import model_objects
    from policy_dataplane.policy.model import Policy
    from policy_dataplane.policy.world import World

    pairs = cost_pairs(lab, port, per_class)
    if not pairs:
        raise RuntimeError(f"lab {lab}: no pod pair the policy allows: nothing to measure the cost on")
    run = CostRun()
    runtime = LabRuntime.open(lab)
    try:
        objects = model_objects(runtime)
        policies = sorted((o for o in objects if isinstance(o, Policy)), key=lambda p: p.key)
        others = [o for o in objects if not isinstance(o, Policy)]
        with runtime.exclusive():  # no other change while the policies are cut
            warm.forget(lab)
            try:
                dp = runtime.dataplane()
                try:
                    for done, fraction in enumerate(FRACTIONS):
                        if progress:
                            progress(done, len(FRACTIONS), "per-packet cost")
                        kept = policies[: round(len(policies) * fraction / 100)]
                        dp.sync(World.from_objects([*others, *kept]), runtime.placement())
                        dp.save_state(runtime.dataplane_state)
                        run.fractions.append(fraction)
                        run.policies.append(len(kept))
                        run.new_flow_us.append(new_flow_rtts(pairs, port, count))
                        run.established_us.append(established_rtts(pairs, port, count))
                    if runtime.spec.dataplane == "nftables":
                        run.conntrack_new_flow_us = _conntrack_only_rtts(runtime, dp, pairs, port, count)
                finally:
                    dp.close()
            finally:
                converge.sync(runtime)  # the store's policies, programmed back
        if progress:
            progress(len(FRACTIONS), len(FRACTIONS), "per-packet cost")
    finally:
        runtime.close()
    return run


def conntrack_only_script() -> str:
    """The lab's table replaced by one that only tracks connections (replies and invalid packets are what
    conntrack decides; every new flow is let through)."""
    from policy_dataplane.dataplane.hostprogram import TABLE

    return (f"add table inet {TABLE}\ndelete table inet {TABLE}\nadd table inet {TABLE}\n"
            f"add chain inet {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}\n"
            f"add rule inet {TABLE} forward ct state established,related accept\n"
            f"add rule inet {TABLE} forward ct state invalid drop\n")


def _conntrack_only_rtts(runtime: LabRuntime, dp: Dataplane, pairs: Sequence[Pair], port: int, count: int) -> list[float]:
    """New-flow RTTs with only conntrack on every host, then each host's whole program put back (the
    caller holds the change lock: the controller repairs nothing meanwhile)."""
    from topology import names
    from topology.engines import get_engine

    engine = get_engine(runtime.spec.engine)
    hosts = runtime.local_hosts()
    try:
        for host in hosts:
            engine.run_in(names.host_netns(runtime.lab, host), ["nft", "-f", "-"], stdin=conntrack_only_script())
        return new_flow_rtts(pairs, port, count)
    finally:
        for host in hosts:
            dp.host(host).resync(dp.programs[host])


__all__ = ["FRACTIONS", "CostRun", "measure_cost", "new_flow_rtts", "established_rtts", "cost_pairs"]
