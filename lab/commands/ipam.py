"""`lab ipam`: blocks, their hosts and how full they are, and who owns each address."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, open_lab, print_json


@app.command(rich_help_panel="Lab")
def ipam(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """IPAM blocks with their affine host and use, and every allocated address with its owner."""
    from lab.addresses import ipam_of

    with open_lab(lab) as runtime:
        state = ipam_of(runtime)
    blocks: list[dict[str, Any]] = [
        {"cidr": str(u.cidr), "host": u.host, "used": u.used, "free": u.free, "borrowed_by_others": u.borrowed}
        for u in state.usage()
    ]
    addresses = [{"ip": str(a.ip), "owner": a.handle, "host": a.host, "block": str(a.block)} for a in state.allocations()]
    if as_json:
        print_json({"pool": str(state.config.pool), "blocks": blocks, "addresses": addresses})
        return
    table = Table(title=f"IPAM blocks of pool {state.config.pool}", title_justify="left")
    for col in ("block", "host", "used", "free", "borrowed by others"):
        table.add_column(col)
    for b in blocks:
        table.add_row(b["cidr"], b["host"], str(b["used"]), str(b["free"]), str(b["borrowed_by_others"]))
    console.print(table)
    owners = Table(title="addresses", title_justify="left")
    for col in ("ip", "owner", "host", "block"):
        owners.add_column(col)
    for a in addresses[:100]:
        owners.add_row(a["ip"], a["owner"], a["host"], a["block"])
    console.print(owners)
    if len(addresses) > 100:
        console.print(f"... and {len(addresses) - 100} more (`lab ipam --json` lists all)")
