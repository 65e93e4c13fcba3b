"""The typer application every `lab/commands/<verb>.py` module adds its command to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="lab",
    help="netpol-lab: a Calico-style pod network built from namespaces, BGP and nftables, tested with real packets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
