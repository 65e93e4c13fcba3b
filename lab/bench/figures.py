"""The benchmark's result, pure: figures per dataplane, their ratio to the baseline, and how each is shown.

A `Figure` is one headline number measured on every dataplane (`values`, None where it does not apply: a
policy latency on `none`, which enforces nothing). `ratio` is value / baseline (iptables+ipset, Calico's
classic dataplane). `display` is the one formatting both the terminal table and the HTML page use, so the
page can be checked against the JSON.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASELINE = "iptables"
DATAPLANES = ("nftables", "iptables", "none")


@dataclass(frozen=True)
class Figure:
    key: str  # stable id, e.g. "bringup.apply_s": JSON key and the page's data-figure attribute
    section: str
    label: str
    unit: str  # s, ms, µs, MiB, count, probes/s
    values: dict[str, float | None]
    higher_is_better: bool = False

    def ratio(self, dataplane: str, baseline: str = BASELINE) -> float | None:
        return ratio(self.values.get(dataplane), self.values.get(baseline))

    def to_json(self, dataplanes: tuple[str, ...]) -> dict[str, Any]:
        return {"key": self.key, "section": self.section, "label": self.label, "unit": self.unit,
                "higher_is_better": self.higher_is_better,
                "values": {d: clean(self.values.get(d)) for d in dataplanes},
                "ratios": {d: clean(self.ratio(d)) for d in dataplanes}}


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or not math.isfinite(value) or not math.isfinite(baseline):
        return None
    if baseline == 0:
        return None if value != 0 else 1.0
    return value / baseline


def clean(value: float | None) -> float | None:
    """JSON has no NaN: a missing or undefined number is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def display(value: float | None, unit: str = "") -> str:
    """Three significant digits (whole numbers from 1000 up); counts as integers; '—' when missing."""
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "count":
        return f"{round(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def display_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


@dataclass
class BenchResult:
    services: int
    hosts: int
    quick: bool
    dataplanes: tuple[str, ...]
    figures: list[Figure] = field(default_factory=list)
    # plot data: per dataplane
    phases: dict[str, dict[str, float]] = field(default_factory=dict)  # bring-up phase -> s
    cost: dict[str, dict[str, Any]] = field(default_factory=dict)  # fractions, new_flow_us, established_us
    latency_samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # change -> per-path µs
    heatmap: dict[str, dict[str, Any]] = field(default_factory=dict)  # groups, allowed share, mismatches
    machine: dict[str, Any] = field(default_factory=lambda: machine())
    seconds: float = 0.0

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": {"services": self.services, "hosts": self.hosts, "quick": self.quick},
            "dataplanes": list(self.dataplanes), "baseline": BASELINE, "machine": self.machine,
            "seconds": round(self.seconds, 1),
            "figures": [f.to_json(self.dataplanes) for f in self.figures],
            "phases": self.phases, "cost": self.cost,
            "latency_samples_us": self.latency_samples, "heatmap": self.heatmap,
        }


def machine() -> dict[str, Any]:
    """Where the figures came from: CPU model, cores, memory, kernel."""
    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor() or "unknown")
    mem_kib = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal:")), 0)
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def distribution_figures(section: str, key: str, label: str, per_dataplane: dict[str, list[float | None]],
                         dataplanes: tuple[str, ...]) -> list[Figure]:
    """p50, p90, p99, max (ms, from µs samples), the sample count and the paths that never turned, each a
    figure (None for a dataplane without samples)."""
    from traffic.policy_latency import distribution

    stats = {d: distribution(per_dataplane[d]) if d in per_dataplane else None for d in dataplanes}
    out = []
    for stat in ("p50", "p90", "p99", "max"):
        values = {d: (float(s[stat]) / 1000 if s and s["samples"] else None) for d, s in stats.items()}
        out.append(Figure(f"{key}.{stat}_ms", section, f"{label}: {stat}", "ms", values))
    for stat, what in (("samples", "paths timed"), ("missing", "paths never enforced")):
        counts = {d: (float(s[stat]) if s else None) for d, s in stats.items()}
        out.append(Figure(f"{key}.{stat}", section, f"{label}: {what}", "count", counts,
                          higher_is_better=stat == "samples"))
    return out


__all__ = ["BASELINE", "DATAPLANES", "Figure", "BenchResult", "ratio", "display", "display_ratio", "clean",
           "machine", "distribution_figures"]
