"""`lab bgp` (sessions and their state per speaker) and `lab routes HOST` (what BGP put in a kernel)."""

from __future__ import annotations

import typer
from rich.table import Table

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, fail, open_lab, print_json


@app.command(rich_help_panel="Lab")
def bgp(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """BGP sessions of every speaker and reflector, with their state and prefixes received."""
    from bgp.status import sessions

    with open_lab(lab) as runtime:
        from lab.fabric import Fabric  # heavy: imported when the command runs, not by every `lab`
        fabric = Fabric(runtime)
        plan = fabric.speaker_plans()
        states = sessions(runtime.paths, plan)
    if as_json:
        print_json({"layout": plan.layout, "sessions": [s.as_dict() for s in states]})
        return
    table = Table(title=f"BGP sessions ({plan.layout})", title_justify="left")
    for col in ("speaker", "peer", "address", "state", "since", "received", "reason"):
        table.add_column(col)
    for s in states:
        colour = "green" if s.state == "established" else "red"
        table.add_row(s.speaker, s.peer, s.peer_address, f"[{colour}]{s.state}[/]", s.since or "",
                      str(s.received), s.reason)
    console.print(table)
    up = sum(1 for s in states if s.state == "established")
    console.print(f"{up} of {len(states)} session ends established")


@app.command(rich_help_panel="Lab")
def routes(
    host: str = typer.Argument(..., help="a host or external node"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """What a node announces, its blackholes, and the routes BGP installed in its kernel."""
    from bgp.status import routes as route_table

    with open_lab(lab) as runtime:
        table_data = route_table(runtime.paths, host)
    if table_data is None:
        fail(f"no BGP speaker status for {host!r} in lab {lab!r} (see `lab status` for node names)")
    if as_json:
        print_json(table_data.as_dict())
        return
    console.print(f"[bold]{host}[/] speaker {'running' if table_data.running else 'NOT running'}"
                  f" (status of {table_data.updated})")
    console.print("announces: " + (", ".join(map(str, table_data.announced)) or "nothing"))
    console.print("blackholes: " + (", ".join(map(str, table_data.blackholes)) or "none"))
    table = Table(title="learnt routes in the kernel", title_justify="left")
    table.add_column("prefix")
    table.add_column("next hop")
    for prefix, via in sorted(table_data.routes.items()):
        table.add_row(str(prefix), via)
    console.print(table)
    for error in table_data.errors:
        console.print(f"[red]error:[/] {error}")
