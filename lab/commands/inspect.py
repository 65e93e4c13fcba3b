"""`lab status` and `lab exec`: look at a running lab."""

from __future__ import annotations

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, fail, open_lab, require_root


@app.command(rich_help_panel="Lab")
def status(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Hosts, pods, addresses and blocks of a running lab, and its health: exits 1 when it is degraded."""
    from lab import thin_client

    code = thin_client.show(lab, "status", {"json": as_json})  # drawn by the controller, when it runs
    if code is None:
        code = _status_cold(lab, as_json)
    raise typer.Exit(code)


def _status_cold(lab: str, as_json: bool) -> int:
    """Without a controller answering: health says it is down (and starts it again), the rest from the store."""
    from lab.health import controller_health
    from lab.machines import local_machine
    from lab.read_views import print_status
    from lab.stores import store_exists
    from lab.summary import PODS_SHOWN
    from topology.names import LabPaths

    require_root(f"lab {lab!r}")
    paths = LabPaths.for_lab(lab)
    limit = {} if as_json else {"pods_limit": PODS_SHOWN}  # a table shows only the first pods
    health = controller_health(paths, lab_status=True, **limit) if store_exists(paths) else None
    data = health.pop("lab_status", None) if health else None  # started again: its memory
    if data is None:
        from lab.status import lab_status

        with open_lab(lab, supervise=False) as runtime:
            data = lab_status(runtime)
            health = health or controller_health(runtime.paths)
    data["controller"] = health
    data["machines"] = {}
    if local_machine(paths) is not None:  # a lab spanning machines: the others' health is in the shared store
        from lab.controller.machine_link import machines_health

        with open_lab(lab, supervise=False) as runtime:
            data["machines"] = machines_health(runtime.store, runtime.spec.machine_names(), runtime.machine)
    return print_status(data, as_json, console)


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, rich_help_panel="Lab")
def exec_(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="NS/POD, or a node name (host, external, reflector)"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Run a command inside a pod or node namespace (a Docker pod: in its container): lab exec dev/web -- ip route."""
    from lab.targets import resolve_netns
    from topology.engines import get_engine

    argv = list(ctx.args)
    if not argv:
        fail("give the command after `--`, e.g. lab exec dev/web -- ip addr")
    with open_lab(lab) as runtime:
        try:
            netns = resolve_netns(runtime, target)
            engine = get_engine(runtime.spec.engine)
        except KeyError as exc:
            fail(str(exc.args[0]))
    raise typer.Exit(engine.exec_in(netns, argv, capture=False).returncode)
