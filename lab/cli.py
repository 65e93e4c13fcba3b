"""Entry point: imports every command module (each registers itself on `lab.app.app`) and runs the app."""

from __future__ import annotations

import importlib
import pkgutil

from rich.markup import escape

import lab.commands
from lab.app import app

# `lab --help` lists commands in the order their modules register them: the everyday ones first.
FIRST = ("updown", "inspect", "controller", "graph", "bgp", "ipam", "apply", "label", "diff", "explain", "counters",
         "probe", "matrix", "latency", "policy_latency", "scenario", "bank", "bench")


def register_commands() -> None:
    found = {module.name for module in pkgutil.iter_modules(lab.commands.__path__)}
    for name in [*[m for m in FIRST if m in found], *sorted(found - set(FIRST))]:
        importlib.import_module(f"lab.commands.{name}")


def user_errors() -> tuple[type[Exception], ...]:
    """Failures a user can act on, whatever command meets them: a message, never a traceback."""
    from lab.controller.launcher import ControllerError
    from lab.limits import LimitsError
    from lab.runtime import LabNotUp
    from policy_dataplane.dataplane.program_state import StateError
    from topology.kernel_text import UnsafeText
    from topology.names import NameError_

    # LabNotUp: pointed at a lab that is not up; NameError_: an invalid --lab value (`../../etc`, `x;y`);
    # StateError: a run-time file from another version; ControllerError: a write not programmed in time.
    return (LabNotUp, NameError_, StateError, LimitsError, UnsafeText, ControllerError)


def main() -> None:
    from lab.console import errors

    register_commands()
    try:
        app()
    except SystemExit:
        raise  # how click ends every command: not an error (and user_errors' imports cost ~0.2 s)
    except user_errors() as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise SystemExit(1) from None
