"""One `lab bench` run: the bank world built once per dataplane, measured, torn down; then the figures.

`run_bench` touches the kernel (one lab per dataplane, always removed again); `assemble` turns what was
measured into a `BenchResult` (pure, unit-tested).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.bench.bringup import BringUp
from lab.bench.cost import CostRun
from lab.bench.figures import BenchResult, Figure, distribution_figures
from lab.bench.programming import Programming
from lab.bench.verify import Verification
from topology.engine import Progress

LAB_SUFFIXES = {"nftables": "nft", "iptables": "ipt", "none": "none"}  # lab names: <prefix><suffix>


def lab_names(prefix: str) -> dict[str, str]:
    """The bench's lab per dataplane (two benches with different prefixes can run side by side)."""
    return {d: f"{prefix}{suffix}" for d, suffix in LAB_SUFFIXES.items()}

QUICK = {"services": 30, "hosts": 2}
FULL = {"services": 1500, "hosts": 16}


@dataclass(frozen=True)
class BenchOptions:
    services: int
    hosts: int
    dataplanes: tuple[str, ...]
    quick: bool = False
    prefix: str = "bench"  # of the labs' names

    @property
    def repetitions(self) -> int:  # changes per kind of policy change
        return 3 if self.quick else 10

    @property
    def cost_count(self) -> int:  # round trips per pair, per fraction of the policies, per kind of flow
        return 20 if self.quick else 200

    @property
    def cost_pairs_per_class(self) -> int:
        return 2 if self.quick else 4


@dataclass
class DataplaneRun:
    bringup: BringUp
    programming: Programming
    latency: dict[str, list[float | None]] | None  # change kind -> per path µs; None: nothing enforces (none)
    cost: CostRun
    verification: Verification


def run_dataplane(dataplane: str, options: BenchOptions, bank_text: str, port: int, progress: Progress
                  ) -> DataplaneRun:
    from lab import pipeline
    from lab.bench.bringup import bring_up
    from lab.bench.cost import measure_cost
    from lab.bench.latency import measure_policy_latency, per_path_latencies
    from lab.bench.programming import measure_programming
    from lab.bench.verify import verify_all

    lab = lab_names(options.prefix)[dataplane]
    if pipeline.is_up(lab):
        raise pipeline.LabError(f"lab bench: a lab named {lab!r} is up already (another bench?); "
                                f"`lab down {lab}` removes it")

    def tagged(done: int, total: int, what: str) -> None:
        progress(done, total, f"{dataplane}: {what}")

    try:
        bringup = bring_up(lab, options.hosts, dataplane, bank_text, tagged)
        tagged(0, 1, "programming")
        programming = measure_programming(lab)
        tagged(1, 1, "programming")
        latency = None
        if dataplane != "none":
            outcomes = measure_policy_latency(lab, port, options.repetitions, progress=tagged)
            latency = {kind: per_path_latencies(o) for kind, o in outcomes.items()}
        cost = measure_cost(lab, port, options.cost_count, options.cost_pairs_per_class, progress=tagged)
        verification = verify_all(lab, port, filtered=dataplane != "none", progress=tagged)
    finally:
        tagged(0, 1, "lab down")
        pipeline.down(lab, force=True)
        tagged(1, 1, "lab down")
    return DataplaneRun(bringup, programming, latency, cost, verification)


def run_bench(options: BenchOptions, progress: Progress) -> BenchResult:
    from policy_dataplane.policy.bankgen import BankSpec, bank_yaml

    bank = BankSpec(services=options.services, fixed_ips=False)
    text = bank_yaml(bank)
    started = time.perf_counter()
    runs = {}
    for done, dataplane in enumerate(options.dataplanes):
        progress(done, len(options.dataplanes), "dataplanes measured")
        runs[dataplane] = run_dataplane(dataplane, options, text, bank.port, progress)
    progress(len(options.dataplanes), len(options.dataplanes), "dataplanes measured")
    result = assemble(options, runs)
    result.seconds = time.perf_counter() - started
    return result


def _cost_figures(runs: dict[str, DataplaneRun], dataplanes: Sequence[str]) -> list[Figure]:
    out = []
    for kind, label in (("new_flow", "new-flow RTT p50"), ("established", "established-flow RTT p50")):
        for index, fraction in enumerate(runs[dataplanes[0]].cost.fractions):
            values = {d: _stat(runs[d].cost, kind, index) for d in dataplanes}
            out.append(Figure(f"cost.{kind}_{fraction}_us", "Per-packet cost", f"{label}, {fraction}% of policies",
                              "µs", values))
    if "none" in runs:
        floor = _stat(runs["none"].cost, "new_flow", -1)
        above = {d: (None if (v := _stat(runs[d].cost, "new_flow", -1)) is None or floor is None else v - floor)
                 for d in dataplanes}
        out.append(Figure("cost.new_flow_above_none_us", "Per-packet cost",
                          "new-flow RTT p50 above none, all policies", "µs", above))
        tracked = {d: None if (v := runs[d].cost.summary()["conntrack_new_flow_p50_us"][0]) is None or floor is None
                   else float(v) - floor for d in dataplanes}
        if any(v is not None for v in tracked.values()):
            out.append(Figure("cost.conntrack_above_none_us", "Per-packet cost",
                              "of which conntrack alone (no dispatch, no policy)", "µs", tracked))
    return out


def _stat(cost: CostRun, kind: str, index: int) -> float | None:
    value = cost.summary()[f"{kind}_p50_us"][index]
    return None if value is None else float(value)


def assemble(options: BenchOptions, runs: dict[str, DataplaneRun]) -> BenchResult:
    """Figures and plot data from what each dataplane's run measured (pure)."""
    d = tuple(runs)
    result = BenchResult(options.services, options.hosts, options.quick, d)

    def fig(key: str, section: str, label: str, unit: str, value: Callable[[DataplaneRun], float | None],
            higher_is_better: bool = False) -> None:
        result.figures.append(Figure(key, section, label, unit, {n: value(r) for n, r in runs.items()},
                                     higher_is_better))

    s = "Bring-up"
    fig("bringup.up_s", s, "lab up (hosts, BGP mesh, base filters)", "s", lambda r: r.bringup.up_s)
    fig("bringup.apply_s", s, "bank applied (pods, plumbing, routes, filters)", "s", lambda r: r.bringup.apply_s)
    fig("bringup.bgp_s", s, "BGP convergence (every host has every route)", "s", lambda r: r.bringup.bgp_converged_s)
    fig("bringup.kernel_mib", s, "memory: kernel", "MiB", lambda r: r.bringup.kernel_mib)
    fig("bringup.processes_mib", s, "memory: processes (PSS)", "MiB", lambda r: r.bringup.process_pss_mib)
    s = "Programming"
    fig("programming.compile_ms", s, "full compile, every host", "ms", lambda r: r.programming.compile_s * 1000)
    fig("programming.program_ms", s, "full program, every host", "ms", lambda r: r.programming.program_s * 1000)
    fig("programming.rules", s, "rules (all hosts)", "count", lambda r: r.programming.size.rules)
    fig("programming.sets", s, "sets (all hosts)", "count", lambda r: r.programming.size.sets)
    fig("programming.elements", s, "set elements (all hosts)", "count", lambda r: r.programming.size.elements)
    fig("programming.change_ms", s, "one label change, program every host: p50", "ms",
        lambda r: statistics.median(r.programming.change_s) * 1000 if r.programming.change_s else None)
    from lab.bench.latency import CHANGES

    for kind, label in CHANGES.items():
        samples = {n: r.latency[kind] for n, r in runs.items() if r.latency is not None}
        result.figures += distribution_figures("Policy latency", f"latency.{kind}", label, samples, d)
        result.latency_samples[kind] = {n: sorted(v for v in values if v is not None) for n, values in samples.items()}
    result.figures += _cost_figures(runs, d)
    s = "Verification"
    fig("verify.pairs", s, "ordered pairs probed (all of them)", "count", lambda r: r.verification.pairs, True)
    fig("verify.probes_per_s", s, "probes per second", "probes/s", lambda r: r.verification.probes_per_s, True)
    fig("verify.total_s", s, "time to verify every pair", "s", lambda r: r.verification.total_s)
    fig("verify.mismatches", s, "mismatches with the oracle", "count", lambda r: r.verification.mismatches)
    result.phases = {n: dict(r.bringup.stages) for n, r in runs.items()}
    result.cost = {n: r.cost.summary() for n, r in runs.items()}
    result.heatmap = {n: r.verification.heatmap for n, r in runs.items()}
    return result


__all__ = ["BenchOptions", "DataplaneRun", "run_bench", "run_dataplane", "assemble", "lab_names", "QUICK", "FULL"]
