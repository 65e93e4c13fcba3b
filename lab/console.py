"""What every command shares: one rich console, progress bars for long work, error exits, opening a lab
and printing the report of a change."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# No `:name:` emoji codes anywhere in the lab's output: looking for them in every table cell was ~15% of a
# `lab status` at bank scale.
console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)

LAB_OPTION_HELP = "the lab's name (as in its lab file)"


def print_error(message: str, err: Console = errors) -> int:
    """`error: MESSAGE` in red (the message's own brackets are not markup); the exit code that goes with it."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    return 1


def fail(message: str, code: int = 1) -> NoReturn:
    print_error(message)
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


def print_rows(title: str, headers: list[str], rows: list[list[str]], out: Console = console) -> None:
    """A listing: a rich table for a few rows on a terminal; plain aligned columns otherwise (as kubectl
    prints them: a 1500-row rich table takes over a second to lay out, and a pipe wants plain text)."""
    if out.is_terminal and len(rows) <= 200:
        from lab.tables import print_table

        print_table(out, title, headers, rows)
        return
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [[h.upper() for h in headers], *rows]]
    out.file.write("\n".join(lines) + "\n")


def print_json(data: Any, out: Console = console) -> None:
    out.file.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Any]:
    """Yields a callable(done, total, what) that drives one bar per kind of work."""
    if not enabled:
        yield lambda done, total, what: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # ~17 ms

    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(done: int, total: int, what: str) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update


def open_lab(lab: str, supervise: bool = True):  # type: ignore[no-untyped-def]
    """The running lab; with `supervise`, its controller is started again first if it died."""
    from lab.runtime import LabNotUp, LabRuntime

    require_root(f"lab {lab!r}")
    try:
        runtime = LabRuntime.open(lab)
    except LabNotUp as exc:
        fail(str(exc))
    if supervise:
        restart_controller_noted(runtime.paths)
    return runtime


def restart_controller_noted(paths: Any) -> None:
    """Every command starts the lab's controller again if it died, and says so."""
    from lab.health import restart_controller

    if (pid := restart_controller(paths)) is not None:
        errors.print(f"note: the controller of lab {paths.lab} was not running: started it again (pid {pid})")


def run_change(action):  # type: ignore[no-untyped-def]
    """Run a change of the lab and print its report; a refused change exits with its message."""
    print_report(attempt_change(action))


def attempt_change(action):  # type: ignore[no-untyped-def]
    from lab.apply import ApplyError
    from policy_dataplane.policy.documents import DocumentsInvalid

    try:
        return action()
    except (ApplyError, DocumentsInvalid) as exc:
        fail(str(exc))


def print_report(report) -> None:  # type: ignore[no-untyped-def]
    lines = report.lines()
    for line in lines:
        console.print(line, highlight=False)
    if len(lines) > SUMMARY_AFTER:
        console.print(report.counts(), highlight=False)


SUMMARY_AFTER = 20  # lines of output after which a count follows
