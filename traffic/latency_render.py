"""Latency pictures and tables: a rich table of percentiles and a histogram PNG (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path

from rich.table import Table


def latency_table(summary: dict[str, dict[str, dict[str, float | int]]], title: str) -> Table:
    table = Table(title=title)
    for column in ("condition", "path", "samples", "dropped", "p50 µs", "p90 µs", "p99 µs", "mean µs"):
        table.add_column(column, justify="left" if column in ("condition", "path") else "right")
    for condition, classes in summary.items():
        for klass, row in classes.items():
            table.add_row(condition, klass, str(row["samples"]), str(row["dropped"]),
                          *("–" if math.isnan(row[k]) else f"{row[k]:.1f}" for k in ("p50", "p90", "p99", "mean")))
    return table


def save_histogram(samples: dict[str, dict[str, list[float]]], path: Path, title: str,
                   xlabel: str = "round-trip time (µs, kernel timestamps)") -> Path:
    """Step histograms on a log axis, one per (condition, class), with their sample counts in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 5))
    everything = [v for classes in samples.values() for values in classes.values() for v in values if v > 0]
    if everything:
        bins = np.logspace(np.log10(min(everything)), np.log10(max(everything)) + 1e-9, 60)
        for condition, classes in samples.items():
            for klass, values in sorted(classes.items()):
                if values:
                    ax.hist(values, bins=bins.tolist(), histtype="step", linewidth=1.5,
                            label=f"{condition}, {klass} (n={len(values)})")
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("probes")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
