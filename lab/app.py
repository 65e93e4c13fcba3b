"""The typer application every `lab/commands/<verb>.py` module adds its command to."""

from __future__ import annotations

import typer

DISTRIBUTION = "netpol-lab"

app = typer.Typer(
    name="lab",
    help="netpol-lab: a Calico-style pod network built from namespaces, BGP and nftables, tested with real packets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def installed_version() -> str:
    """The version pip recorded when it installed the lab (the metadata, not a constant in the code)."""
    from importlib.metadata import PackageNotFoundError, version  # 20 ms: only for --version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed: pip install . or ./scripts/bootstrap)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{DISTRIBUTION} {installed_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: bool = typer.Option(False, "--version", help="print the installed version and exit",
                                  callback=_print_version, is_eager=True),
) -> None:
    pass
