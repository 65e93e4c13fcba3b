"""What `lab policy-latency` measures: which pods probe which destination, the change that is timed, and
the report of a run. The command only parses options and renders (lab/commands/policy_latency.py).

The change goes through the lab as a user's would (`lab.latency_changes`): `deny` applies a NetworkPolicy
that isolates one pod and admits half of the probing pods, `label` quarantines the pod with a label. `nft`
is the baseline without the lab: a plain nftables drop rule in the destination pod's namespace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from traffic.model import ProbeEndpoint, Protocol
from traffic.policy_latency import Change, ChangeOutcome

CHANGES = ("deny", "label", "nft")


class PolicyLatencyError(ValueError):
    """The lab cannot give this run what it needs (too few pods, a change that alters no path)."""


@dataclass(frozen=True)
class Paths:
    destination: ProbeEndpoint
    sources: list[ProbeEndpoint]  # those that reach the destination now first
    reaches: dict[str, bool]  # source name -> reaches the destination now (the oracle)


def choose_paths(lab: str, protocol: Protocol, port: int, sources: int) -> Paths:
    """The first pod is the destination; the probing pods are those that reach it now first (a change can
    only cut what flows), then the others, `sources` in all."""
    import lab.traffic_hooks as hooks  # looked up at each run: the traffic tests put a scratch lab's in its place

    pods = sorted((e for e in hooks.probe_endpoints(lab) if e.kind == "pod"), key=lambda e: e.name)
    if len(pods) < 3:
        raise PolicyLatencyError("a policy-latency run needs at least 3 pods")
    destination, candidates = pods[0], pods[1:]
    verdicts = hooks.expected_verdicts(lab, [(s, destination) for s in candidates], protocol.value, port)
    reaches = dict(zip((s.name for s in candidates), verdicts, strict=True))
    reaching = [s for s in candidates if reaches[s.name]]
    chosen = [*reaching, *(s for s in candidates if not reaches[s.name])][:sources]
    return Paths(destination, chosen, reaches)


def changes(lab: str, change: str, paths: Paths, protocol: Protocol, port: int
            ) -> AbstractContextManager[Callable[[int], Change]]:
    """The i-th change of the run, made by a factory the context manager yields (it sets up and removes
    what the changes need)."""
    if change not in CHANGES:
        raise PolicyLatencyError(f"unknown change {change!r} ({', '.join(CHANGES)})")
    if change == "nft":
        from traffic.changes import nft_deny_change

        # only pods that reach the destination now: the rule's drop is the only change on their paths
        reaching = [s for s in paths.sources if paths.reaches[s.name]]
        denied, allowed = reaching[: (len(reaching) + 1) // 2], reaching[(len(reaching) + 1) // 2 :]

        def factory(i: int) -> Change:
            return nft_deny_change(f"nft-deny-{i}", paths.destination, denied, allowed, protocol, port)

        return contextlib.nullcontext(factory)
    from lab.latency_changes import lab_changes

    return lab_changes(lab, change, paths.destination, paths.sources, protocol, port,
                       before=[paths.reaches[s.name] for s in paths.sources])


def run(lab: str, change: str, repetitions: int, rate: float, protocol: Protocol, port: int, sources: int
        ) -> list[ChangeOutcome]:
    """Probe at `rate` while the change is made `repetitions` times; each outcome times every path."""
    from traffic.probes import ProbeEngine
    from traffic.stream import StreamOptions, run_experiment

    paths = choose_paths(lab, protocol, port, sources)
    with changes(lab, change, paths, protocol, port) as make, ProbeEngine() as engine:
        if not make(0).paths or all(p.before == p.after for p in make(0).paths):
            raise PolicyLatencyError(f"the {change} change would not alter any path from {len(paths.sources)} "
                                     f"pods to {paths.destination.name}")
        return run_experiment(engine, make, repetitions, StreamOptions(rate=rate))


def report(lab: str, rate: float, outcomes: list[ChangeOutcome]) -> dict[str, Any]:
    from traffic.policy_latency import summarise

    return {"lab": lab, "rate": rate, "summary": summarise(outcomes), "changes": [
        {"change": o.change, "write_us": o.write_us, "all_paths_us": o.all_paths_us,
         "handover_us": o.handover_us, "from_controller_us": o.from_controller_us, "leaks": o.leaks,
         "paths": [{"src": p.path.probe.src.name, "dst": p.path.probe.dst.name, "after": p.path.after,
                    "latency_us": p.latency_us, "resolution_us": p.resolution_us, "flaps": p.flaps,
                    "probes": p.probes} for p in o.paths]}
        for o in outcomes]}


def latencies_by_verdict(outcomes: list[ChangeOutcome]) -> dict[str, list[float]]:
    """The timed paths' latencies (µs) by the verdict they changed to: what the histogram draws."""
    per_path: dict[str, list[float]] = {}
    for o in outcomes:
        for p in o.timed:
            if p.latency_us:
                per_path.setdefault("allow" if p.path.after else "deny", []).append(p.latency_us)
    return per_path


__all__ = ["CHANGES", "Paths", "PolicyLatencyError", "changes", "choose_paths", "latencies_by_verdict", "report", "run"]
