"""`lab events`: what the lab's controller did and why (its health is in `lab status`, see lab.health)."""

from __future__ import annotations

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console


@app.command(rich_help_panel="Lab")
def events(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """What the lab's controller did and why: repairs, syncs, failures, starts and stops."""
    import json
    from dataclasses import asdict

    from lab.console import open_lab
    from lab.controller import events as log

    runtime = open_lab(lab)
    paths = runtime.paths
    runtime.close()
    stream = log.follow(paths) if follow else iter(log.read(paths))
    try:
        for event in stream:
            if as_json:
                typer.echo(json.dumps(asdict(event), sort_keys=True))
            else:
                console.print(event.line(), highlight=False, markup=False)
    except KeyboardInterrupt:
        pass
