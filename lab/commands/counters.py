"""`lab counters` (packets per policy, rule, endpoint: like calico-accountant) and `lab drops` (denied
packets as they happen, with pod names and the policy that denied: like kube-iptables-tailer)."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, open_lab, print_json


@app.command(rich_help_panel="Policy")
def counters(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Packets and bytes per policy, per rule and per endpoint, with packets no policy allowed."""
    with open_lab(lab) as runtime:
        dp = runtime.dataplane()
        try:
            data = dp.counters(list(runtime.placement()))  # hosts and external servers
        finally:
            dp.close()
    if as_json:
        print_json(data.to_json())
        return
    policies = Table(title="per policy (all hosts)", title_justify="left")
    columns = ("evaluated", "allowed", "denied", "passed", "logged", "bytes")
    policies.add_column("policy")
    for col in columns:
        policies.add_column(col)
    for name, c in sorted(data.by_policy().items()):
        policies.add_row(name, *(str(c.get(k, 0)) for k in columns))
    console.print(policies)
    rules = Table(title="per rule", title_justify="left")
    for col in ("host", "policy", "direction", "rule", "action", "packets", "bytes"):
        rules.add_column(col)
    for r in data.rules:
        if r.packets:
            rules.add_row(r.host, r.policy, r.direction, str(r.rule), r.action, str(r.packets), str(r.bytes))
    console.print(rules)
    denied = Table(title="dropped because no policy allowed them", title_justify="left")
    denied.add_column("endpoint")
    denied.add_column("packets")
    for endpoint, packets in sorted(data.default_denied().items()):
        if packets:
            denied.add_row(endpoint, str(packets))
    console.print(denied)


@app.command(rich_help_panel="Policy")
def drops(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing until interrupted"),
    seconds: float = typer.Option(5.0, "--seconds", help="without --follow: how long to listen"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """Denied (and logged) packets as they happen, naming pods and the policy that denied them."""
    import json

    from lab.stored_world import world_of

    with open_lab(lab) as runtime:
        world = world_of(runtime)
        dp = runtime.dataplane()
        hosts = list(runtime.placement())  # hosts and external servers

    shown = 0

    def show(event) -> None:  # type: ignore[no-untyped-def]
        nonlocal shown
        shown += 1
        typer.echo(json.dumps(event.to_json(), sort_keys=True) if as_json else event.describe())

    try:
        with dp.drops(hosts, world) as watcher:
            if follow:
                for event in watcher.follow():
                    show(event)
            else:
                deadline = time.monotonic() + seconds
                while (left := deadline - time.monotonic()) > 0:
                    for event in watcher.poll(min(left, 0.5)):
                        show(event)
                if not shown:
                    errors.print(f"no denied or logged packets in {seconds:g}s (use --follow to keep listening)")
    except KeyboardInterrupt:
        pass
    finally:
        dp.close()
