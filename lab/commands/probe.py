"""`lab probe SRC DST`: send real probes from one endpoint to another and print the verdict and RTTs."""

from __future__ import annotations

from typing import Any

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, fail, print_json, require_namespaces, require_root
from traffic.model import Protocol


@app.command(rich_help_panel="Traffic")
def probe(
    src: str = typer.Argument(..., help="source: ns/pod, host or external name, or IP"),
    dst: str = typer.Argument(..., help="destination: ns/pod, svc/NS/NAME (a Service), host or external name, or IP"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    protocol: Protocol = typer.Option(Protocol.TCP, "--protocol", "-p", case_sensitive=False),
    port: int = typer.Option(80, "--port", min=1, max=65535),
    count: int = typer.Option(1, "--count", "-c", min=1),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Probe SRC -> DST with real packets: delivered or dropped, whether a reply came back, RTTs."""
    require_root("lab probe")  # raw sockets in the lab's namespaces
    from lab.runtime import probe_endpoints
    from lab.service_targets import find_target
    from traffic.latency import percentiles
    from traffic.model import Probe, find_endpoint
    from traffic.probes import run_probes

    endpoints = probe_endpoints(lab, hosts=True)
    try:
        source, target = find_endpoint(endpoints, src), find_target(lab, endpoints, dst)
    except KeyError as exc:
        fail(str(exc.args[0]))
    require_namespaces([source, target], lab)
    results = run_probes([Probe(source, target, protocol, port)] * count)
    rtts = [r.rtt_us for r in results if r.rtt_us is not None]
    delivered = sum(r.delivered for r in results)
    summary: dict[str, Any] = {
        "src": source.name, "dst": target.name, "protocol": protocol.value, "port": port, "count": count,
        "delivered": delivered, "replied": sum(r.replied for r in results),
        "verdict": "allow" if delivered == count else "deny" if delivered == 0 else "mixed",
        "rtt_us": [None if r.rtt_us is None else round(r.rtt_us, 1) for r in results],
        "evidence": sorted({r.evidence for r in results}),
    } | ({f"rtt_{k}_us": round(v, 1) for k, v in percentiles(rtts).items()} if rtts else {})
    if as_json:
        print_json(summary)
        return
    colour = {"allow": "green", "deny": "red", "mixed": "yellow"}[summary["verdict"]]
    port_text = f"/{port}" if protocol.has_ports else ""
    console.print(
        f"{source.name} ({source.ip}) -> {target.name} ({target.ip}) {protocol.value}{port_text}: "
        f"[bold {colour}]{summary['verdict']}[/] ({delivered}/{count} delivered, {summary['replied']} replied; "
        f"{', '.join(summary['evidence'])})"
    )
    if rtts:
        p = percentiles(rtts)
        console.print(f"rtt µs: min {min(rtts):.1f} p50 {p['p50']:.1f} p90 {p['p90']:.1f} p99 {p['p99']:.1f} "
                      f"max {max(rtts):.1f}")


@app.command(rich_help_panel="Traffic")
def lookup(
    pod: str = typer.Argument(..., help="the pod that asks: NS/POD"),
    name: str = typer.Argument(..., help="a name: a Service (backend, backend.shop, ...), an external's name"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Resolve NAME from inside POD with its own resolv.conf and the cluster DNS (real DNS packets, so policy
    that denies DNS egress makes it fail). Exit status 1 when it does not resolve."""
    require_root("lab lookup")
    from lab.lookup import lookup as resolve
    from lab.runtime import LabRuntime

    runtime = LabRuntime.open(lab)
    try:
        found = resolve(runtime, pod, name)
    except (KeyError, ValueError) as exc:
        fail(str(exc.args[0]))
    finally:
        runtime.close()
    if not found.resolved:
        console.print(f"{pod}: {name}: [bold red]does not resolve[/]")
        raise typer.Exit(1)
    console.print(f"{pod}: {name} -> {', '.join(found.addresses)}")
