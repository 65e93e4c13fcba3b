"""`lab policy-latency`: how long a policy change takes to show in the packets, with its distribution (the
run itself is lab/policy_latency.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, fail, print_json, require_root
from traffic.model import Protocol


@app.command(name="policy-latency", rich_help_panel="Traffic")
def policy_latency(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    repetitions: int = typer.Option(10, "--repetitions", "-r", min=1),
    rate: float = typer.Option(2000.0, "--rate", help="probes per second over all affected paths"),
    protocol: Protocol = typer.Option(Protocol.TCP, "--protocol", "-p", case_sensitive=False),
    port: int = typer.Option(80, "--port", min=1, max=65535),
    sources: int = typer.Option(4, "--sources", min=2, help="pods probing the destination"),
    change: str = typer.Option("deny", "--change", help="deny (apply a policy), label (quarantine) or nft"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON report"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="JSON report file (a histogram PNG goes next to it)"),
) -> None:
    """While probes stream at a fixed rate, apply a change and time it until every path shows it."""
    from lab import policy_latency as run
    from traffic.policy_latency_render import summary_table

    require_root("lab policy-latency")  # raw sockets in the lab's namespaces
    if change not in run.CHANGES:
        raise typer.BadParameter(" or ".join(run.CHANGES), param_hint="--change")
    try:
        outcomes = run.run(lab, change, repetitions, rate, protocol, port, sources)
    except run.PolicyLatencyError as exc:
        fail(str(exc))
    report = run.report(lab, rate, outcomes)
    if out:
        from traffic.latency_render import save_histogram

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))
        png = save_histogram({"to": run.latencies_by_verdict(outcomes)}, out.with_suffix(".png"),
                             f"policy latency on {lab}", "write → first packet with the new verdict (µs)")
        errors.print(f"wrote {out} and {png}")
    if as_json:
        print_json(report)
    else:
        console.print(summary_table(report["summary"], f"policy latency on {lab}: {len(outcomes)} changes at "
                                                       f"{rate:.0f} probes/s"))
