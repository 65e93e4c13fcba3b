"""Entry point: imports every command module (each registers itself on `lab.app.app`) and runs the app."""

from __future__ import annotations

import importlib
import pkgutil

import lab.commands
from lab.app import app


def register_commands() -> None:
    for module in pkgutil.iter_modules(lab.commands.__path__):
        importlib.import_module(f"lab.commands.{module.name}")


def main() -> None:
    register_commands()
    app()
