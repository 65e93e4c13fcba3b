"""Entry point: imports every command module (each registers itself on `lab.app.app`) and runs the app."""

from __future__ import annotations

import importlib
import pkgutil

from rich.markup import escape

import lab.commands
from lab.app import app

# `lab --help` lists commands in the order their modules register them: the everyday ones first.
FIRST = ("updown", "inspect", "controller", "graph", "bgp", "ipam", "apply", "label", "diff", "explain", "counters", "probe",
         "matrix", "latency", "policy_latency", "scenario", "bank")


def register_commands() -> None:
    found = {module.name for module in pkgutil.iter_modules(lab.commands.__path__)}
    for name in [*[m for m in FIRST if m in found], *sorted(found - set(FIRST))]:
        importlib.import_module(f"lab.commands.{name}")


def main() -> None:
    from lab.console import errors
    from lab.controller.launcher import ControllerError
    from lab.runtime import LabNotUp

    register_commands()
    try:
        app()
    except (LabNotUp, ControllerError) as exc:  # a lab not up, a write not programmed: a message, not a traceback
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise SystemExit(1) from None
