"""`lab bench --report DIR`: one self-contained HTML page (index.html) with the figures and four plots:
per-packet cost against policy count, policy latency CDFs, time per bring-up phase, the verification heat
map. Plots are PNG data URIs drawn by matplotlib: the page needs no network and no script.

Every value cell carries `data-figure` and `data-dataplane` so a test (or a reader's script) can check the
page against the JSON; its text is `figures.display` of the value, as in the terminal table.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from typing import Any

from lab.bench.figures import BASELINE, BenchResult, display, display_ratio

COLOURS = {"nftables": "#1f77b4", "iptables": "#d62728", "none": "#7f7f7f"}
PLOTS = ("cost", "latency", "phases", "heatmap")


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cost_plot(result: BenchResult) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    for dataplane, cost in result.cost.items():
        colour = COLOURS.get(dataplane)
        for kind, style in (("new_flow", "-o"), ("established", "--s")):
            points = [(x, y) for x, y in zip(cost["policies"], cost[f"{kind}_p50_us"], strict=True) if y is not None]
            if points:
                ax.plot(*zip(*points), style, color=colour,
                        label=f"{dataplane}: {'new flow' if kind == 'new_flow' else 'established'}")
    ax.set_xlabel("policies programmed")
    ax.set_ylabel("RTT p50 (µs)")
    ax.set_title("per-packet cost against policy count")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def latency_plot(result: BenchResult) -> str:
    plt = _pyplot()
    from lab.bench.latency import CHANGES

    fig, axes = plt.subplots(1, len(CHANGES), figsize=(11, 3.6), sharey=True, layout="constrained")
    for ax, (kind, label) in zip(axes, CHANGES.items(), strict=True):
        for dataplane, samples in result.latency_samples.get(kind, {}).items():
            if samples:
                ms = [v / 1000 for v in samples]
                ax.step(ms, [(i + 1) / len(ms) for i in range(len(ms))], where="post",
                        color=COLOURS.get(dataplane), label=f"{dataplane} (n={len(ms)})")
        ax.set_xscale("log")
        ax.set_title(label)
        ax.set_xlabel("write → enforced on a path (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("share of paths")
    return _png(fig)


def phases_plot(result: BenchResult) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 2.2 + 0.6 * len(result.phases)), layout="constrained")
    stages = list(dict.fromkeys(stage for phases in result.phases.values() for stage in phases))
    cmap = plt.get_cmap("tab20")
    for row, (dataplane, phases) in enumerate(result.phases.items()):
        left = 0.0
        for k, stage in enumerate(stages):
            width = phases.get(stage, 0.0)
            ax.barh(row, width, left=left, color=cmap(k % 20), label=stage if row == 0 else None)
            left += width
    ax.set_yticks(range(len(result.phases)), list(result.phases))
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("time per bring-up phase (lab up stages, then the bank)")
    fig.legend(fontsize=7, ncol=5, loc="outside lower center")
    return _png(fig)


def heatmap_plot(result: BenchResult) -> str:
    plt = _pyplot()
    maps = [(d, m) for d, m in result.heatmap.items() if m.get("groups")]
    fig, axes = plt.subplots(1, max(1, len(maps)), figsize=(4.2 * max(1, len(maps)) + 1, 4.4), squeeze=False,
                             layout="constrained")
    image = None
    for ax, (dataplane, grid) in zip(axes[0], maps, strict=False):
        share = [[a / p if p else 0.0 for a, p in zip(ar, pr, strict=True)]
                 for ar, pr in zip(grid["allowed"], grid["probed"], strict=True)]
        image = ax.imshow(share, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        n = len(grid["groups"])
        for i in range(n):
            for j in range(n):
                if grid["mismatches"][i][j]:
                    ax.text(j, i, str(grid["mismatches"][i][j]), ha="center", va="center", color="red", fontsize=7)
        labels = [g.replace("bank-", "") for g in grid["groups"]]
        ax.set_xticks(range(n), labels, fontsize=6, rotation=90)
        ax.set_yticks(range(n), labels, fontsize=6)
        mismatches = sum(map(sum, grid["mismatches"]))
        ax.set_title(f"{dataplane}: {mismatches} mismatches", fontsize=9)
        ax.set_xlabel("destination namespace", fontsize=8)
        ax.set_ylabel("source namespace", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="share delivered")
    return _png(fig)


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; }
td.value, td.ratio { text-align: right; font-variant-numeric: tabular-nums; }
td.ratio { color: #07a; }
tr.section th { text-align: left; background: #f3f3f3; }
figure { margin: 1.5em 0; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def render_html(result: BenchResult) -> str:
    size = f"{result.services} services on {result.hosts} hosts" + (" (quick)" if result.quick else "")
    m = result.machine
    machine = f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, Linux {m.get('kernel')}"
    head = "".join(f"<th>{escape(d)}</th>" + ("" if d == BASELINE else f"<th>× {BASELINE}</th>")
                   for d in result.dataplanes)
    rows = []
    section = None
    for f in result.figures:
        if f.section != section:
            section = f.section
            rows.append(f'<tr class="section"><th colspan="{2 + 2 * len(result.dataplanes)}">{escape(section)}</th></tr>')
        cells = []
        for d in result.dataplanes:
            cells.append(f'<td class="value" data-figure="{escape(f.key)}" data-dataplane="{escape(d)}">'
                         f"{escape(display(f.values.get(d), f.unit))}</td>")
            if d != BASELINE:
                cells.append(f'<td class="ratio" data-ratio="{escape(f.key)}" data-dataplane="{escape(d)}">'
                             f"{escape(display_ratio(f.ratio(d)))}</td>")
        rows.append(f"<tr><td>{escape(f.label)}</td><td>{escape(f.unit)}</td>{''.join(cells)}</tr>")
    plots = {"cost": ("Per-packet cost against policy count", cost_plot(result)),
             "latency": ("Policy latency: distribution over every affected path (CDF)", latency_plot(result)),
             "phases": ("Time per bring-up phase", phases_plot(result)),
             "heatmap": ("Verification: share of pairs delivered per namespace pair (mismatches in red)",
                         heatmap_plot(result))}
    figures = "".join(f'<figure><figcaption><h2>{escape(title)}</h2></figcaption>'
                      f'<img id="plot-{key}" class="plot" alt="{escape(title)}" src="{uri}"></figure>'
                      for key, (title, uri) in plots.items())
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>lab bench: {escape(size)}</title>'
            f"<style>{STYLE}</style></head><body>"
            f"<h1>lab bench</h1><p id=\"size\">The bank world, {escape(size)}, built once per dataplane; each "
            f"figure with its ratio to {BASELINE}+ipset (Calico's classic dataplane); none = no filter.</p>"
            f'<p id="machine">Machine: {escape(machine)}. Run took {result.seconds:.0f} s.</p>'
            f'<table id="figures"><thead><tr><th>figure</th><th>unit</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>{figures}</body></html>\n")


def write_report(result: BenchResult, directory: Path) -> Path:
    """DIR/index.html (the page) and DIR/bench.json (the same result for machines)."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.json").write_text(json.dumps(result.to_json(), indent=1))
    page = directory / "index.html"
    page.write_text(render_html(result))
    return page


__all__ = ["render_html", "write_report", "PLOTS"]
