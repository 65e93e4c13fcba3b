"""Pictures of a matrix: a rich truth table (namespaces grouped, mismatches in red) and a heat-map PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from traffic.matrix import MatrixRecord, MatrixReport, group_summary

TABLE_UP_TO = 40
"""Above this many endpoints the per-pair table is unreadable: print the per-group summary instead."""
MISMATCH_LIST_UP_TO = 50

_CELL = {
    ("allow", "allow"): Text("✓", style="green"),
    ("deny", "deny"): Text("·", style="dim"),
    ("deny", "allow"): Text("A!", style="bold white on red"),  # expected deny, measured allow: a leak
    ("allow", "deny"): Text("D!", style="bold black on yellow"),  # expected allow, measured deny
}


def _endpoint_order(records: Sequence[MatrixRecord]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for r in records:
        seen.setdefault(r.src, r.src_group)
        seen.setdefault(r.dst, r.dst_group)
    return sorted(((group, name) for name, group in seen.items()))


def truth_table(report: MatrixReport) -> Table:
    """Rows are sources, columns destinations, both grouped by namespace; a section line between groups."""
    order = _endpoint_order(report.records)
    cells = {(r.src, r.dst): _CELL[(r.expected, r.measured)] for r in report.records}
    table = Table(title=f"{report.protocol.value}/{report.port}: measured vs expected "
                        f"({report.mismatches} mismatches of {len(report.records)} probed)",
                  caption="✓ allowed as expected · denied as expected  A! allowed but expected denied  "
                          "D! denied but expected allowed  (blank: not probed)")
    table.add_column("src \\ dst", style="bold")
    for group, name in order:
        table.add_column(f"{name.rsplit('/', 1)[-1]}\n[dim]{group}[/]", justify="center")
    previous_group = None
    for group, name in order:
        if previous_group is not None and group != previous_group:
            table.add_section()
        previous_group = group
        table.add_row(name, *(cells.get((name, dst), Text("")) for _, dst in order))
    return table


def summary_table(report: MatrixReport) -> Table:
    table = Table(title=f"{report.protocol.value}/{report.port}: {len(report.records)} of {report.total_pairs} "
                        f"pairs probed, {report.mismatches} mismatches")
    for column in ("src group", "dst group", "probed", "expected allow", "measured allow", "mismatches"):
        table.add_column(column, justify="right" if " " in column and column != "src group" else "left")
    for row in group_summary(report):
        style = "bold red" if row["mismatches"] else None
        table.add_row(row["src_group"], row["dst_group"], str(row["probed"]), str(row["expected_allow"]),
                      str(row["measured_allow"]), str(row["mismatches"]), style=style)
    return table


def mismatch_table(report: MatrixReport, limit: int = MISMATCH_LIST_UP_TO) -> Table:
    table = Table(title=f"mismatches (first {limit})" if report.mismatches > limit else "mismatches")
    for column in ("src", "dst", "expected", "measured", "evidence"):
        table.add_column(column)
    for r in [r for r in report.records if r.mismatch][:limit]:
        table.add_row(r.src, r.dst, r.expected, Text(r.measured, style="bold red"), r.evidence)
    return table


def print_report(report: MatrixReport, console: Console) -> None:
    endpoints = len(_endpoint_order(report.records))
    console.print(truth_table(report) if endpoints <= TABLE_UP_TO else summary_table(report))
    if report.mismatches:
        console.print(mismatch_table(report))


HEAT_CODES = {("deny", "deny"): 1, ("allow", "allow"): 2, ("allow", "deny"): 3, ("deny", "allow"): 4}
HEAT_COLOURS = ["#ffffff", "#d9d9d9", "#2ca25f", "#fdae61", "#d7191c"]
HEAT_LABELS = ["not probed", "denied as expected", "allowed as expected", "denied, expected allow",
               "allowed, expected deny"]


def heat_codes(report: MatrixReport) -> tuple[list[tuple[str, str]], list[list[int]]]:
    """The endpoint order and the code grid (rows: sources, columns: destinations) the heat map draws."""
    order = _endpoint_order(report.records)
    index = {name: i for i, (_, name) in enumerate(order)}
    grid = [[0] * len(order) for _ in order]
    for r in report.records:
        grid[index[r.src]][index[r.dst]] = HEAT_CODES[(r.expected, r.measured)]
    return order, grid


def save_heat_map(report: MatrixReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    order, grid = heat_codes(report)
    n = len(order)
    size = min(4 + n * 0.25, 20)
    fig, ax = plt.subplots(figsize=(size + 3, size))
    ax.imshow(grid, cmap=ListedColormap(HEAT_COLOURS), vmin=0, vmax=len(HEAT_COLOURS) - 1,
              interpolation="nearest")
    boundaries = [i for i in range(1, n) if order[i][0] != order[i - 1][0]]
    for b in boundaries:
        ax.axhline(b - 0.5, color="black", linewidth=0.8)
        ax.axvline(b - 0.5, color="black", linewidth=0.8)
    if n <= 60:
        ax.set_xticks(range(n), [name for _, name in order], rotation=90, fontsize=7)
        ax.set_yticks(range(n), [name for _, name in order], fontsize=7)
    else:  # label the groups, not the endpoints
        starts = [0, *boundaries]
        ends = [*boundaries, n]
        ticks = [(s + e - 1) / 2 for s, e in zip(starts, ends, strict=True)]
        ax.set_xticks(ticks, [order[s][0] for s in starts], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [order[s][0] for s in starts], fontsize=7)
    ax.set_xlabel("destination")
    ax.set_ylabel("source")
    ax.set_title(f"{report.protocol.value}/{report.port}: {report.mismatches} mismatches, "
                 f"{len(report.records)} probed of {report.total_pairs}")
    ax.legend(handles=[Patch(color=c, label=label) for c, label in zip(HEAT_COLOURS, HEAT_LABELS, strict=True)],
              loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
