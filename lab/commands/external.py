"""`lab external add -f FILE` and `lab external remove NAME`: external servers while the lab is up."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, fail, open_lab


@app.command(rich_help_panel="Lab")
def external(
    action: str = typer.Argument(..., help="add or remove"),
    name: str = typer.Argument(None, help="remove: the external's name"),
    file: Path = typer.Option(None, "--file", "-f", help="add: YAML of one external, as under `externals:`"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Add an external server (its address, ports and DNS names as in a lab file) or remove one; every
    speaker gets the new peer at once."""
    from lab.externals import ExternalError, add_external, remove_external
    from policy_dataplane.policy.safeyaml import InputError, load_all, read_text

    if action not in ("add", "remove"):
        raise typer.BadParameter("add or remove", param_hint="ACTION")
    if action == "add" and (file is None or name is not None):
        fail("lab external add -f FILE (the file names the external)")
    if action == "remove" and (name is None or file is not None):
        fail("lab external remove NAME")
    with open_lab(lab) as runtime:
        try:
            if action == "add":
                try:
                    docs = load_all(read_text(file, runtime.spec.effective_limits().fileBytes))
                except yaml.YAMLError as exc:
                    fail(f"{file}: not valid YAML: {exc}")
                if len(docs) != 1:
                    fail(f"{file}: one external per file (found {len(docs)} YAML documents)")
                node = add_external(runtime, docs[0])
                console.print(f"external {node.name} added at {node.fabric_ip.ip} ({node.netns})")
            else:
                node = remove_external(runtime, name)
                console.print(f"external {node.name} removed")
        except (ExternalError, InputError) as exc:
            fail(str(exc))
