"""`lab status` and `lab exec`: look at a running lab."""

from __future__ import annotations

import subprocess

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, fail, print_json, require_root


def open_lab(lab: str):  # type: ignore[no-untyped-def]
    from lab.runtime import LabNotUp, LabRuntime

    require_root(f"lab {lab!r}")
    try:
        return LabRuntime.open(lab)
    except LabNotUp as exc:
        fail(str(exc))


@app.command(rich_help_panel="Lab")
def status(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Hosts, pods, addresses and blocks of a running lab."""
    from lab.status import lab_status
    from lab.summary import render_status

    runtime = open_lab(lab)
    try:
        data = lab_status(runtime)
    finally:
        runtime.close()
    print_json(data) if as_json else render_status(data)


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, rich_help_panel="Lab")
def exec_(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="NS/POD, or a node name (host, external, reflector)"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Run a command inside a pod or node namespace (a Docker pod: in its container): lab exec dev/web -- ip route."""
    from lab.targets import resolve_netns

    argv = list(ctx.args)
    if not argv:
        fail("give the command after `--`, e.g. lab exec dev/web -- ip addr")
    runtime = open_lab(lab)
    try:
        netns = resolve_netns(runtime, target)
    except KeyError as exc:
        fail(str(exc.args[0]))
    finally:
        runtime.close()
    from topology.engine import NetnsEngine

    # A container pod's command runs inside its container (its own tools), any other in the namespace.
    raise typer.Exit(subprocess.call(NetnsEngine().exec_argv(netns, argv, interactive=True)))
