"""`lab latency`: RTT distributions, same-host and cross-host, with the lab's policies and with them lifted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, print_json, require_root
from traffic.model import Protocol


@app.command(rich_help_panel="Traffic")
def latency(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    protocol: Protocol = typer.Option(Protocol.ICMP, "--protocol", "-p", case_sensitive=False),
    port: int = typer.Option(80, "--port", min=1, max=65535),
    count: int = typer.Option(200, "--count", "-c", min=1, help="probes per pair per condition"),
    pairs: int = typer.Option(20, "--pairs", min=1, help="pod pairs per path class (same-host, cross-host)"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON report"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="file prefix for the .json and .png"),
) -> None:
    """Round-trip times (p50/p90/p99) through the dataplane between pods the policy lets talk, with the
    lab's policies and with them lifted for the run; a histogram PNG."""
    require_root("lab latency")  # raw sockets in the lab's namespaces
    import lab.runtime as runtime
    from traffic.latency import latency_pairs
    from traffic.latency_render import latency_table, save_histogram
    from traffic.measure import measure_latency
    from traffic.probes import ProbeEngine

    endpoints = runtime.probe_endpoints(lab)
    # Pairs the lab's policy allows: what policy costs is measured on traffic it lets through.
    chosen = latency_pairs(endpoints, per_class=pairs,
                           keep=lambda candidates: runtime.expected_verdicts(lab, candidates, protocol, port))
    conditions = runtime.latency_conditions(lab)
    with ProbeEngine() as engine:
        run = measure_latency(engine, chosen, protocol, port, count, conditions)
    prefix = out or Path(f"latency-{lab}-{protocol.value}")
    json_path, png_path = prefix.with_suffix(".json"), prefix.with_suffix(".png")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(run.to_json(), indent=1))
    title = f"{lab}: {protocol.value}{'/' + str(port) if protocol.has_ports else ''} RTT, {count} probes per pair"
    save_histogram(run.samples, png_path, title)
    if as_json:
        print_json(run.to_json())
    else:
        console.print(latency_table(run.summary(), title))
    errors.print(f"wrote {json_path} and {png_path}")
