"""The terminal table of a bench result: one row per figure, a column per dataplane with its ratio to the
baseline (iptables+ipset)."""

from __future__ import annotations

from rich.table import Table

from lab.bench.figures import BASELINE, BenchResult, display, display_ratio


def bench_table(result: BenchResult) -> Table:
    size = f"{result.services} services on {result.hosts} hosts" + (" (quick)" if result.quick else "")
    table = Table(title=f"lab bench: {size}; ratio to {BASELINE}", title_justify="left")
    table.add_column("figure", no_wrap=True, overflow="ellipsis", max_width=46)
    table.add_column("unit", style="dim", no_wrap=True)
    for dataplane in result.dataplanes:
        table.add_column(dataplane, justify="right", no_wrap=True)
        if dataplane != BASELINE:
            table.add_column("×", justify="right", style="cyan", no_wrap=True)
    section = None
    for figure in result.figures:
        if figure.section != section:
            section = figure.section
            table.add_row(f"[bold]{section}[/]", end_section=False)
        cells = [figure.label, figure.unit]
        for dataplane in result.dataplanes:
            cells.append(display(figure.values.get(dataplane), figure.unit))
            if dataplane != BASELINE:
                cells.append(display_ratio(figure.ratio(dataplane)))
        table.add_row(*cells)
    return table


__all__ = ["bench_table"]
