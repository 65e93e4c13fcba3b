"""`lab CMD` imports only CMD's module: the map it uses must name every command's real module."""

from __future__ import annotations

import ast
import subprocess
import sys

from lab import cli


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    code = ("import lab.cli as c, lab.app as a; c.register_commands([]); "
            "print(repr({(x.name or x.callback.__name__.replace('_', '-')): x.callback.__module__.rsplit('.', 1)[1] "
            "for x in a.app.registered_commands} | {g.name: g.typer_instance.registered_commands[0].callback"
            ".__module__.rsplit('.', 1)[1] for g in a.app.registered_groups}))")
    registered = ast.literal_eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert registered == cli.COMMAND_MODULES


def test_a_known_command_imports_only_its_module_and_help_imports_all() -> None:
    code = ("import sys, lab.cli as c; c.register_commands(sys.argv[1:]); "
            "print(sorted(m for m in sys.modules if m.startswith('lab.commands.')))")
    one = subprocess.run([sys.executable, "-c", code, "status", "--lab", "x"], capture_output=True, text=True, check=True)
    assert ast.literal_eval(one.stdout) == ["lab.commands.inspect"]
    every = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, check=True)
    assert len(ast.literal_eval(every.stdout)) == len(set(cli.COMMAND_MODULES.values()))
