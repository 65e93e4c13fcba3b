"""`lab diff -f FILE`: which flows would change verdict if the files were applied (or deleted). A dry run
(the work is `lab.semantic_diff`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, fail, open_lab, print_json
from traffic.model import Protocol

SHOWN = 200  # rows of the table; --json lists every change


@app.command(rich_help_panel="Policy")
def diff(
    files: list[Path] = typer.Option(..., "-f", "--filename", help="YAML files, as for `lab apply`"),
    delete: bool = typer.Option(False, "--delete", help="what deleting the files' objects would change"),
    protocol: Optional[Protocol] = typer.Option(None, "--protocol", "-p", case_sensitive=False, help="only this protocol (with --port)"),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="only this port [default: every declared port]"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Dry run: the flows whose verdict the files would change, on every port something listens on (or the
    one given). Nothing is applied: the lab and its filters stay as they are."""
    from lab.apply import ApplyError
    from lab.semantic_diff import lab_diff
    from policy_dataplane.policy.documents import DocumentsInvalid

    with open_lab(lab) as runtime:
        try:
            result = lab_diff(runtime, files, delete, protocol and protocol.value, port)
        except (ApplyError, DocumentsInvalid) as exc:
            fail(str(exc))
    changes, flows, refs = result.changes, result.flows, result.refs
    if as_json:
        print_json({"lab": lab, "flows": [f"{p}/{n}" for p, n in flows], "endpoints": len(refs),
                    "changes": [c.as_dict() for c in changes], "unplaced_pods": list(result.unplaced)})
        return
    flow_text = ", ".join(p if n is None else f"{p}/{n}" for p, n in flows) or "none declared"
    if not changes:
        console.print(f"no verdict changes between {len(refs)} endpoints on {flow_text}")
    else:
        table = Table("source", "destination", "flow", "now", "after", box=None, padding=(0, 2))
        for c in changes[:SHOWN]:
            colour = "green" if c.after else "red"
            flow = c.protocol if c.port is None else f"{c.protocol}/{c.port}"
            table.add_row(c.src, c.dst, flow, "allow" if c.before else "deny",
                          f"[{colour}]{'allow' if c.after else 'deny'}[/]")
        console.print(table)
        if len(changes) > SHOWN:
            console.print(f"... and {len(changes) - SHOWN} more (--json lists all)")
        denied = sum(c.before and not c.after for c in changes)
        console.print(f"{len(changes)} flows change on {flow_text}: {denied} would be denied, "
                      f"{len(changes) - denied} would be allowed")
    if result.unplaced:
        errors.print(f"new pods not in the diff (no address until applied): {', '.join(result.unplaced)}")
