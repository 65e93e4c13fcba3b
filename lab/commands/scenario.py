"""`lab scenario list` and `lab scenario run NAME`: scripted demos checked by the oracle and by packets."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from lab.app import app
from lab.console import console, fail, print_json, progress_bar, require_root

scenario_app = typer.Typer(help="Scripted demos: dev/prod isolation, quarantine, micro-segmentation, recipes, bank rollout.",
                           no_args_is_help=True)
app.add_typer(scenario_app, name="scenario", rich_help_panel="Demos")

MARKS = {True: "[green]✓[/]", False: "[bold red]✗[/]"}


@scenario_app.command("list")
def list_() -> None:
    """The built-in scenarios and what they show."""
    from lab.scenario import ScenarioError, available, load_scenario

    table = Table("name", "title", "lab", "steps")
    for name in available():
        try:
            loaded = load_scenario(name)
        except ScenarioError as exc:
            table.add_row(name, f"[red]{exc}[/]", "", "")
            continue
        table.add_row(name, loaded.scenario.title, loaded.scenario.lab, str(len(loaded.scenario.steps)))
    console.print(table)


@scenario_app.command("run")
def run(
    name: str = typer.Argument(..., help="a built-in scenario (`lab scenario list`) or a .scenario.yaml file"),
    down: bool = typer.Option(False, "--down", help="bring the lab down at the end"),
    as_json: bool = typer.Option(False, "--json", help="one JSON report at the end instead of tables"),
) -> None:
    """Bring the scenario's lab up (if it is not), then play every step: change, then check each documented
    verdict with the oracle and with real packets. Exits 1 if any check disagrees."""
    from lab import pipeline
    from lab.labfile import LabFileError, load_lab_file
    from lab.runtime import LabRuntime
    from lab.scenario import PROBES_PER_CHECK, ScenarioError, load_scenario, perform, verify

    try:
        loaded = load_scenario(name)
        spec = load_lab_file(loaded.lab_file())
    except (ScenarioError, LabFileError) as exc:
        fail(str(exc))
    require_root("lab scenario run")
    say = (lambda *a, **k: None) if as_json else console.print
    say(f"[bold]{loaded.scenario.title}[/] (lab {spec.name})")
    if pipeline.is_up(spec.name):
        say(f"lab {spec.name} is already up: the scenario plays on top of its current state")
    else:
        started = time.perf_counter()
        try:
            with progress_bar(not as_json) as progress:
                pipeline.up(spec, progress=progress)
        except pipeline.LabError as exc:
            fail(str(exc))
        say(f"brought lab {spec.name} up in {time.perf_counter() - started:.1f}s")

    report: list[dict[str, Any]] = []
    failures = 0
    try:
        for number, step in enumerate(loaded.scenario.steps, start=1):
            say(f"\n[bold cyan]{number}/{len(loaded.scenario.steps)}[/] {step.say}")
            with LabRuntime.open(spec.name) as runtime:
                try:
                    done = perform(runtime, loaded, step)
                except Exception as exc:  # an apply or label the lab refused: name the step
                    fail(f"{loaded.path}: step {number}: {exc}")
            for line in done:
                say(f"  {line}", highlight=False)
            outcomes = verify(spec.name, step.check)
            failures += sum(not o.ok for o in outcomes)
            if outcomes:
                say(_table(outcomes))
            report.append({"step": number, "say": step.say, "done": done, "checks": [
                {"check": o.check.describe(), "expect": o.check.expect, "oracle": o.oracle, "measured": o.measured,
                 "ok": o.ok} for o in outcomes]})
    except ScenarioError as exc:
        fail(str(exc))
    finally:
        if down:
            pipeline.down(spec.name)
    checks = sum(len(r["checks"]) for r in report)
    if as_json:
        print_json({"scenario": loaded.name, "lab": spec.name, "steps": report, "checks": checks, "failures": failures})
    else:
        verdict = "[green]every check as documented[/]" if not failures else f"[bold red]{failures} check(s) differ[/]"
        console.print(f"\n{checks} checks, each by the oracle and by {PROBES_PER_CHECK} real probes: {verdict}")
    if failures:
        raise typer.Exit(1)


def _table(outcomes) -> Table:  # type: ignore[no-untyped-def]
    table = Table("flow", "documented", "oracle", "packets", "", box=None, padding=(0, 2))
    for o in outcomes:
        table.add_row(o.check.describe(), o.check.expect, o.oracle, o.measured, MARKS[o.ok])
    return table
