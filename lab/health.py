"""The lab's health as `lab status` shows it: the controller's report per host, or plainly that it is down.

Also what every `lab` command does first: start the lab's controller again if it died.
"""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from lab.console import console, errors
from topology.names import LabPaths


def restart_controller(paths: LabPaths) -> int | None:
    """The next `lab` command starts a dead controller again (and says so); returns its new pid."""
    from lab.controller import events, launcher

    pid = launcher.ensure_running(paths)
    if pid is not None:
        events.record(paths, events.Event(time.time(), "repair", "controller",
                                          f"was not running: started again by a lab command (pid {pid})"))
        errors.print(f"note: the controller of lab {paths.lab} was not running: started it again (pid {pid})")
    return pid


def controller_health(paths: LabPaths) -> dict[str, Any]:
    """The controller's report, or a plain statement that it is down (then started again: degraded)."""
    from lab.controller import launcher
    from lab.controller.protocol import ControllerUnavailable

    try:
        restarted = restart_controller(paths)
    except launcher.ControllerError as exc:
        return {"running": False, "degraded": [f"the controller is down and could not be started: {exc}"]}
    try:
        health = launcher.ask(paths, {"op": "status"}, timeout=30.0)
    except ControllerUnavailable as exc:
        return {"running": False, "degraded": [f"the controller is down: {exc}"]}
    health["running"] = True
    if restarted is not None:
        health["degraded"] = ["the controller was down (started again now)", *health["degraded"]]
    return health


def render_health(health: dict[str, Any]) -> None:
    if not health.get("running"):
        console.print(f"[bold red]controller: DOWN[/] — {health['degraded'][0]}")
        return
    state = "[bold red]DEGRADED[/]" if health["degraded"] else "[green]healthy[/]"
    console.print(f"controller pid {health['pid']}: {state}; store revision {health['revision']}, programmed "
                  f"{health['programmed_revision']}; resync every {health['resync_interval']:g} s "
                  f"(last pass {health['last_pass_ms']} ms), memory {health['memory_kib'] / 1024:.0f} MiB")
    table = Table(title="health", title_justify="left")
    for col in ("host", "speaker", "route agent", "responder", "dataplane rev", "in sync", "routes missing",
                "last repair"):
        table.add_column(col)
    responder = f"pid {health['responder']}" if health.get("responder") else "[red]down[/]"
    for host, h in health["hosts"].items():
        table.add_row(
            host, f"pid {h['speaker']}" if h["speaker"] else "[red]down[/]",
            "up" if h["agent"] else "[red]down[/]", responder, str(h["dataplane_revision"]),
            "yes" if h["in_sync"] else f"[red]no[/] ({h['problem']})", str(h["routes_missing"]),
            h["last_repair"] or "-",
        )
    console.print(table)
    for problem in health["degraded"]:
        console.print(f"  [red]•[/] {problem}", highlight=False)


def render_machines(machines: dict[str, Any]) -> None:
    """The other machines of a lab spanning machines, as their controllers last reported."""
    for machine, report in machines.items():
        state = "[bold red]DEGRADED[/]" if report["degraded"] else "[green]healthy[/]"
        console.print(f"machine {machine}: {state}, {len(report['hosts'])} host(s), reported {report['age_s']} s ago",
                      highlight=False)
        for problem in report["degraded"]:
            console.print(f"  [red]•[/] {problem}", highlight=False)
