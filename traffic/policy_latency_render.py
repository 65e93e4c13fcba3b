"""Print a policy-latency summary: each distribution with its sample count, in milliseconds."""

from __future__ import annotations

from typing import Any

from rich.table import Table

ROWS = (
    ("per_path_us", "per affected path: write → first packet with the new verdict"),
    ("all_paths_us", "per change: write → every affected path turned"),
    ("from_controller_us", "per change: write reaches the controller → every affected path turned"),
    ("resolution_us", "uncertainty (gap to the path's previous probe)"),
    ("write_us", "the write itself (callback duration)"),
    ("enforced_us", "new pods: creation → first enforced packet"),
)


def summary_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=title, caption=f"leaks {summary['leaks']}  flaps {summary['flaps']}  "
                                       f"wrong before the change {summary['baseline_wrong']}")
    for column in ("distribution", "samples", "missing", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "distribution" else "right")
    for key, label in ROWS:
        row = summary.get(key)
        if row is None or (not row["samples"] and not row["missing"]):
            continue
        table.add_row(label, str(row["samples"]), str(row["missing"]),
                      *(f"{row[k] / 1000:.2f}" for k in ("p50", "p90", "p99", "max")))
    return table
