"""Entry point: imports every command module (each registers itself on `lab.app.app`) and runs the app."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import lab.commands
from lab.app import app

# `lab --help` lists commands in the order their modules register them: the everyday ones first.
FIRST = ("updown", "inspect", "controller", "graph", "bgp", "ipam", "apply", "label", "diff", "explain", "counters",
         "probe", "matrix", "latency", "policy_latency", "scenario", "bank", "bench")


# The module that registers each command: `lab status` then imports one command module instead of all of
# them (~40 ms of every command's start-up). A unit test checks it against what the modules register.
COMMAND_MODULES = {
    "apply": "apply", "delete": "apply", "bank": "bank", "bench": "bench", "bgp": "bgp", "routes": "bgp",
    "events": "controller", "counters": "counters", "drops": "counters", "diff": "diff", "explain": "explain",
    "external": "external", "graph": "graph", "status": "inspect", "exec": "inspect", "ipam": "ipam",
    "label": "label", "get": "label", "latency": "latency", "matrix": "matrix", "cli": "mininet_cli",
    "policy-latency": "policy_latency", "probe": "probe", "lookup": "probe", "scenario": "scenario",
    "up": "updown", "down": "updown",
}


def register_commands(argv: list[str] | None = None) -> None:
    """Imports the module of the command in `argv` (default: this process's), or every module when there is
    none (`lab --help`) or it is not known (click then suggests the nearest names)."""
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), None)
    if command in COMMAND_MODULES:
        importlib.import_module(f"lab.commands.{COMMAND_MODULES[command]}")
        return
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
    from lab.console import print_error

    register_commands()
    try:
        app()
    except SystemExit:
        raise  # how click ends every command: not an error (and user_errors' imports cost ~0.2 s)
    except user_errors() as exc:
        raise SystemExit(print_error(str(exc))) from None
