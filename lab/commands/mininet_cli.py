"""`lab cli`: Mininet's own CLI on a running lab."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, fail, open_lab, require_root


@app.command(name="cli", rich_help_panel="Lab")
def cli(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    script: Path | None = typer.Option(None, "--script", help="run Mininet CLI commands from a file, then leave"),
) -> None:
    """Mininet's CLI on the running lab: `dev/web ping prod/db`, `pingall`, `net`, `dump`, `node1 ip route`."""
    from lab.mininet_view import runtime_view
    from topology.mininet_cli import build_net, close_net, run_cli
    from topology.mininet_lib import MininetUnavailable

    require_root("lab cli")
    runtime = open_lab(lab)
    try:
        nodes, links = runtime_view(runtime)
    finally:
        runtime.close()
    try:
        net = build_net(nodes, links)
    except MininetUnavailable as exc:
        fail(str(exc))
    try:
        run_cli(net, str(script) if script else None)
    finally:
        close_net(net)
