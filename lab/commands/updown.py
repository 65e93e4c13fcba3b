"""`lab up` and `lab down`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, fail, progress_bar, require_root

DEMO_LAB = Path(__file__).parents[1] / "labs" / "demo.yaml"


class Layout(str, Enum):
    MESH = "mesh"
    ROUTE_REFLECTOR = "route-reflector"


@app.command(rich_help_panel="Lab")
def up(
    file: Optional[Path] = typer.Option(None, "-f", "--file", help="lab file (YAML); the built-in demo if omitted"),
    wait: bool = typer.Option(True, help="wait until every host has every route"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="no progress bars"),
    dataplane: Optional[str] = typer.Option(None, "--dataplane",
                                            help="override the lab file's filters backend (e.g. iptables)"),
    layout: Optional[Layout] = typer.Option(None, "--layout", help="override the lab file's BGP layout"),
    name: Optional[str] = typer.Option(None, "--name", help="override the lab's name (e.g. a second demo)"),
    engine: Optional[str] = typer.Option(None, "--engine", help="override the lab file's topology engine (mininet)"),
    resync: float = typer.Option(1.0, "--resync", min=0.05, help="seconds between the controller's resyncs"),
    machine: Optional[str] = typer.Option(None, "--machine",
                                          help="bring up this machine's part of a lab that spans machines"),
) -> None:
    """Bring a lab up: hosts, pods, BGP, filters. With no file, the built-in demo world."""
    from lab import pipeline
    from lab.labfile import LabFileError, load_lab_file, with_overrides
    from lab.summary import print_summary

    try:
        spec = load_lab_file(file or DEMO_LAB)
        if dataplane or layout or name or engine:
            spec = with_overrides(spec, dataplane, layout and layout.value, name, engine)
    except LabFileError as exc:
        fail(str(exc))
    require_root("lab up")
    try:
        with progress_bar(not quiet) as progress:
            timings = pipeline.up(spec, progress=progress, wait=wait, resync=resync, machine=machine)
    except pipeline.LabError as exc:
        fail(str(exc))
    print_summary(spec.name, timings)


@app.command(rich_help_panel="Lab")
def down(
    lab: str = typer.Argument("demo", help=LAB_OPTION_HELP),
    force: bool = typer.Option(False, "--force", help="clean up after a crash even when the lab's state is gone"),
    machine: Optional[str] = typer.Option(None, "--machine",
                                          help="only this machine's part (the default on a machine brought up "
                                               "with --machine)"),
) -> None:
    """Remove every namespace, interface, process and file the lab made."""
    from lab import pipeline

    require_root("lab down")
    try:
        removed = pipeline.down(lab, force=force, machine=machine)
    except pipeline.LabError as exc:
        fail(str(exc))
    console.print(f"lab [bold]{lab}[/] is down: removed {len(removed)} namespaces")
