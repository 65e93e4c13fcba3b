"""Readable tables of a lab (after `lab up`, and for `lab status`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from lab.console import console
from lab.tables import print_table

PODS_SHOWN = 30  # rows of the pods table; `lab status --json` lists every pod


def render_status(status: dict[str, Any], out: Console = console) -> None:
    out.print(
        f"lab [bold]{status['lab']}[/] is {status['status']} (revision {status['revision']}): "
        f"pool {status['pool']}, BGP {status['bgp']}, dataplane {status['dataplane']}, engine {status['engine']}"
    )
    print_table(out, "nodes", ("name", "kind", "fabric address", "pods", "blocks"),
                [(n["name"], n["kind"], n["fabric_ip"], str(n.get("pods", "")), ", ".join(n.get("blocks", [])))
                 for n in status["nodes"]])
    shown = status["pods"][:PODS_SHOWN]
    # one line a pod: wrapping long cells was most of the table's cost (`--json` has them whole)
    print_table(out, "pods", ("namespace", "pod", "host", "ip", "labels", "ports"),
                [(p["namespace"], p["name"], p["host"], p["ip"],
                  _cut(",".join(f"{k}={v}" for k, v in sorted(p["labels"].items())), 24), _cut(" ".join(p["ports"]), 12))
                 for p in shown], no_wrap=True)
    total = status.get("pods_total", len(status["pods"]))
    if total > len(shown):
        out.print(f"... and {total - len(shown)} more pods (`lab status --json` lists all)")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_summary(lab: str, timings: dict[str, float]) -> None:
    from lab.runtime import LabRuntime
    from lab.status import lab_status

    with LabRuntime.open(lab) as runtime:
        status = lab_status(runtime)
    render_status(status)
    steps = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in timings.items())
    console.print(f"up in {sum(timings.values()):.1f}s ({steps})")
    lab_option = "" if lab == "demo" else f" --lab {lab}"
    where = f"{status['pods'][0]['namespace']}/{status['pods'][0]['name']}" if status["pods"] else status["nodes"][0]["name"]
    console.print(f"next: `lab exec {where}{lab_option} -- ip addr`, `lab bgp{lab_option}`, `lab down {lab}`",
                  markup=False)


def render_health(health: dict[str, Any], out: Console = console) -> None:
    if not health.get("running"):
        out.print(f"[bold red]controller: DOWN[/] — {health['degraded'][0]}")
        return
    state = "[bold red]DEGRADED[/]" if health["degraded"] else "[green]healthy[/]"
    out.print(f"controller pid {health['pid']}: {state}; store revision {health['revision']}, programmed "
              f"{health['programmed_revision']}; resync every {health['resync_interval']:g} s "
              f"(last pass {health['last_pass_ms']} ms), memory {health['memory_kib'] / 1024:.0f} MiB")
    responder = f"pid {health['responder']}" if health.get("responder") else "[red]down[/]"
    print_table(out, "health", ("host", "speaker", "route agent", "responder", "dataplane rev", "in sync",
                                "routes missing", "last repair"),
                [(host, f"pid {h['speaker']}" if h["speaker"] else "[red]down[/]", "up" if h["agent"] else "[red]down[/]",
                  responder, str(h["dataplane_revision"]), "yes" if h["in_sync"] else f"[red]no[/] ({h['problem']})",
                  str(h["routes_missing"]), h["last_repair"] or "-")
                 for host, h in health["hosts"].items()])
    for problem in health["degraded"]:
        out.print(f"  [red]•[/] {problem}", highlight=False)


def render_machines(machines: dict[str, Any], out: Console = console) -> None:
    """The other machines of a lab spanning machines, as their controllers last reported."""
    for machine, report in machines.items():
        state = "[bold red]DEGRADED[/]" if report["degraded"] else "[green]healthy[/]"
        out.print(f"machine {machine}: {state}, {len(report['hosts'])} host(s), reported {report['age_s']} s ago",
                  highlight=False)
        for problem in report["degraded"]:
            out.print(f"  [red]•[/] {problem}", highlight=False)
