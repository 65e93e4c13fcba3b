"""`lab apply -f FILE` and `lab delete -f FILE | KIND NAME`: all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.commands.inspect import open_lab
from lab.console import LAB_OPTION_HELP, console, fail


def _run(action):  # type: ignore[no-untyped-def]
    from lab.apply import ApplyError
    from policy_dataplane.documents import DocumentsInvalid

    try:
        report = action()
    except (ApplyError, DocumentsInvalid) as exc:
        fail(str(exc))
    for line in report.lines():
        console.print(line, highlight=False)


@app.command()
def apply(
    files: list[Path] = typer.Option(..., "-f", "--filename", help="YAML files (multi-document, kubectl style)"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Create or update Namespaces, Pods, policies and network sets; nothing changes if any is invalid."""
    from lab.apply import apply_files

    runtime = open_lab(lab)
    try:
        _run(lambda: apply_files(runtime, files))
    finally:
        runtime.close()


@app.command()
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
