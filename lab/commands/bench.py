"""`lab bench`: one run builds the bank world once per dataplane and shows every headline figure side by
side, each with its ratio to iptables+ipset (Calico's classic dataplane); `none` is no filter at all."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import console, errors, fail, print_json, progress_bar, require_root


def parse_dataplanes(text: str) -> tuple[str, ...]:
    from policy_dataplane.dataplane.backends import backend_names

    BACKENDS = backend_names(for_labs=True)

    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [d for d in chosen if d not in BACKENDS]
    if unknown or not chosen:
        raise typer.BadParameter(f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(BACKENDS)}",
                                 param_hint="--dataplanes")
    return chosen


@app.command(rich_help_panel="Traffic")
def bench(
    services: Optional[int] = typer.Option(None, "--services", "-n", min=3,
                                           help="bank services (default 1500; --quick: 30)"),
    hosts: Optional[int] = typer.Option(None, "--hosts", min=1, help="hosts (default 16; --quick: 2)"),
    dataplanes: str = typer.Option("nftables,iptables,none", "--dataplanes",
                                   help="comma-separated: nftables, iptables, none (no filter)"),
    quick: bool = typer.Option(False, "--quick", help="a small bank and fewer samples: under 2 minutes"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON instead of the table"),
    report: Optional[Path] = typer.Option(None, "--report", help="write DIR/index.html (plots) and DIR/bench.json"),
    prefix: str = typer.Option("bench", "--prefix", help="the labs' names: PREFIX + nft, ipt or none"),
) -> None:
    """Bring-up, programming, policy latency, per-packet cost and full verification by packets, measured on
    the bank once per dataplane (each lab removed again after its run)."""
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", prefix):
        raise typer.BadParameter("1-8 lower-case letters and digits, starting with a letter", param_hint="--prefix")
    require_root("lab bench")
    from lab.bench.report import write_report
    from lab.bench.run import FULL, QUICK, BenchOptions, run_bench
    from lab.bench.table import bench_table
    from lab.pipeline import LabError

    size = QUICK if quick else FULL
    options = BenchOptions(services=services or size["services"], hosts=hosts or size["hosts"],
                           dataplanes=parse_dataplanes(dataplanes), quick=quick, prefix=prefix)
    try:
        with progress_bar() as progress:
            result = run_bench(options, progress)
    except LabError as exc:
        fail(str(exc))
    if report is not None:
        page = write_report(result, report)
        errors.print(f"wrote {page} and {report / 'bench.json'}")
    if as_json:
        print_json(result.to_json())
    else:
        console.print(bench_table(result))
