"""Shared terminal output: one rich console, progress bars for long work, and error exits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
errors = Console(stderr=True)

LAB_OPTION_HELP = "the lab's name (as in its lab file)"


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def require_root(what: str) -> None:
    """Network namespaces, nftables and the lab's state need root: say so before anything half-happens."""
    if os.geteuid() != 0:
        fail(f"{what} needs root (network namespaces, nftables, BGP speakers): run it with sudo")


def require_namespaces(endpoints: Iterable[Any], lab: str) -> None:
    """Before probing: every endpoint's network namespace is there (one deleted by hand would otherwise
    surface as a traceback from deep inside the probes)."""
    from topology.netns import exists

    missing = sorted(e.name for e in endpoints if not exists(e.netns))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        fail(f"lab {lab!r}: the network namespace of {shown} is gone (deleted outside the lab); "
             f"rebuild the lab with `lab down {lab}` and `lab up`")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Any]:
    """Yields a callable(done, total, what) that drives one bar per kind of work."""
    if not enabled:
        yield lambda done, total, what: None
        return
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(done: int, total: int, what: str) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update
