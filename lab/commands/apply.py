"""`lab apply -f FILE` and `lab delete -f FILE | KIND NAME`: all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.commands.inspect import open_lab
from lab.console import LAB_OPTION_HELP, console, fail, progress_bar


def _run(action):  # type: ignore[no-untyped-def]
    _print(_attempt(action))


def _attempt(action):  # type: ignore[no-untyped-def]
    from lab.apply import ApplyError
    from policy_dataplane.policy.documents import DocumentsInvalid

    try:
        return action()
    except (ApplyError, DocumentsInvalid) as exc:
        fail(str(exc))


def _print(report) -> None:  # type: ignore[no-untyped-def]
    lines = report.lines()
    for line in lines:
        console.print(line, highlight=False)
    if len(lines) > SUMMARY_AFTER:
        console.print(report.counts(), highlight=False)


SUMMARY_AFTER = 20  # lines of output after which a count follows
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

            report = _attempt(lambda: apply_files(runtime, files, progress))
    finally:
        runtime.close()
    _print(report)


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
            _run(lambda: delete_files(runtime, files))
        elif kind and name:
            _run(lambda: delete_keys(runtime, [key_for(kind, name)]))
        else:
            fail("give -f FILE, or KIND and NAME (e.g. `lab delete pod dev/web`)")
    finally:
        runtime.close()
