"""`lab matrix`: the measured reachability matrix next to the oracle's expected one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, fail, print_json, require_namespaces, require_root
from traffic.model import Protocol


@app.command(rich_help_panel="Traffic")
def matrix(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    protocol: Protocol = typer.Option(Protocol.TCP, "--protocol", "-p", case_sensitive=False),
    port: int = typer.Option(80, "--port", min=1, max=65535),
    namespaces: Optional[str] = typer.Option(None, "--namespaces", "-n", help="a,b: only these namespaces"),
    sample: Optional[int] = typer.Option(None, "--sample", min=0, help="probe K expected-denied pairs (stratified)"),
    full: bool = typer.Option(False, "--full", help="probe every pair"),
    to: list[str] = typer.Option([], "--to", help="only these destinations, e.g. svc/NS/NAME (a Service); repeat"),
    hosts: bool = typer.Option(False, "--hosts", help="probe to and from the hosts themselves too"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON report"),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="file prefix for the .json and .png (default matrix-LAB-PROTO-PORT)"),
) -> None:
    """Probe pairs with real packets and compare with what the policies should allow."""
    require_root("lab matrix")  # raw sockets in the lab's namespaces
    from lab.runtime import expected_verdicts, probe_endpoints
    from lab.service_targets import find_target
    from traffic.matrix_render import print_report, save_heat_map
    from traffic.measure import measure_matrix
    from traffic.probes import ProbeEngine

    if full and sample is not None:
        fail("give --sample K or --full, not both")
    groups = {g.strip() for g in namespaces.split(",") if g.strip()} if namespaces else None
    endpoints = probe_endpoints(lab, hosts=hosts)
    require_namespaces(endpoints, lab)
    try:
        destinations = [find_target(lab, endpoints, t) for t in to] or None
    except KeyError as exc:
        fail(str(exc.args[0]))
    with ProbeEngine() as engine:
        report = measure_matrix(
            engine, endpoints, lambda pairs, proto, p: expected_verdicts(lab, pairs, proto, p),
            protocol, port, groups=groups, sample=sample, full=full, destinations=destinations,
        )
    prefix = out or Path(f"matrix-{lab}-{protocol.value}-{port}")
    json_path, png_path = prefix.with_suffix(".json"), prefix.with_suffix(".png")
    data = report.to_json()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=None if len(report.records) > 10_000 else 1))
    save_heat_map(report, png_path)
    if as_json:
        print_json(data)
    else:
        print_report(report, console)
    errors.print(f"wrote {json_path} and {png_path}")
    if report.mismatches:
        raise typer.Exit(1)
