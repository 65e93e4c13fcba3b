"""`lab apply -f FILE` and `lab delete -f FILE | KIND NAME`: all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import (
    LAB_OPTION_HELP,
    attempt_change,
    fail,
    open_lab,
    print_report,
    progress_bar,
    run_change,
)

BAR_FROM = 50  # new pods from which plumbing shows a progress bar


@app.command(rich_help_panel="Policy")
def apply(
    files: list[Path] = typer.Option(..., "-f", "--filename", help="YAML files (multi-document, kubectl style)"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Create or update Namespaces, Pods, policies and network sets; nothing changes if any is invalid."""
    from lab.apply import apply_files

    runtime = open_lab(lab)
    try:
        with progress_bar() as bar:
            def progress(done: int, total: int, what: str) -> None:
                if total >= BAR_FROM:
                    bar(done, total, what)

            report = attempt_change(lambda: apply_files(runtime, files, progress))
    finally:
        runtime.close()
    print_report(report)


@app.command(rich_help_panel="Policy")
def delete(
    kind: Optional[str] = typer.Argument(None, help="kind, e.g. pod, networkpolicy, globalnetworkpolicy"),
    name: Optional[str] = typer.Argument(None, help="NAME or NS/NAME"),
    files: list[Path] = typer.Option([], "-f", "--filename", help="delete what these files describe"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Delete objects by file or by kind and name; nothing changes if any is missing."""
    from lab.apply import delete_files, delete_keys, key_for

    runtime = open_lab(lab)
    try:
        if files:
            run_change(lambda: delete_files(runtime, files))
        elif kind and name:
            run_change(lambda: delete_keys(runtime, [key_for(kind, name)]))
        else:
            fail("give -f FILE, or KIND and NAME (e.g. `lab delete pod dev/web`)")
    finally:
        runtime.close()
