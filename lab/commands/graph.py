"""`lab graph`: the lab's topology and BGP sessions as a picture, Mermaid or Graphviz dot."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, errors, open_lab


@app.command(rich_help_panel="Lab")
def graph(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    output_format: str = typer.Option("png", "--format", help="png (a file), mermaid or dot (printed)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG file [default: graph-LAB.png]"),
    pods: Optional[bool] = typer.Option(None, "--pods/--no-pods", help="one box per pod [default: up to 60 pods]"),
) -> None:
    """Fabric bridge, hosts, externals, reflectors, pods and every BGP session (dashed; red when down)."""
    from bgp.status import sessions
    from lab.graph import lab_graph, save_png, to_dot, to_mermaid
    from lab.status import lab_status

    if output_format not in ("png", "mermaid", "dot"):
        raise typer.BadParameter("png, mermaid or dot", param_hint="--format")
    with open_lab(lab) as runtime:
        status = lab_status(runtime)
        from lab.fabric import Fabric  # heavy: imported when the command runs, not by every `lab`
        states = [s.as_dict() for s in sessions(runtime.paths, Fabric(runtime).speaker_plans())]
    g = lab_graph(status, states, with_pods=pods)
    if output_format == "mermaid":
        typer.echo(to_mermaid(g), nl=False)
    elif output_format == "dot":
        typer.echo(to_dot(g), nl=False)
    else:
        path = save_png(g, out or Path(f"graph-{lab}.png"))
        errors.print(f"wrote {path}: {g.number_of_nodes()} nodes, {g.number_of_edges()} links and sessions")
