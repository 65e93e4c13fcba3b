"""`lab diff -f FILE`: which flows would change verdict if the files were applied (or deleted). A dry run."""

from __future__ import annotations

import dataclasses
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
    from lab.apply import ApplyError, read_sources
    from lab.stored_world import planned_world, world_of
    from policy_dataplane.policy.diff import PROTOCOL_NAMES, verdict_changes
    from policy_dataplane.policy.documents import DocumentsInvalid

    runtime = open_lab(lab)
    try:
        sources = read_sources(files)
        before = world_of(runtime)
        planned = planned_world(runtime, sources, delete=delete)
        externals = _externals(runtime)
    except (ApplyError, DocumentsInvalid) as exc:
        fail(str(exc))
    finally:
        runtime.close()
    # What each destination listens on: a verdict change on a port nobody serves is noise.
    serves = {f"{ns}/{name}": {(PROTOCOL_NAMES.get(p.protocol, str(p.protocol)), p.port) for p in pod.ports}
              for (ns, name), pod in planned.world.pods.items()}
    serves.update({ip: ports for ip, (_, ports) in externals.items()})
    names = {ip: name for ip, (name, _) in externals.items()}
    if port is not None or protocol is not None:
        flows = [((protocol or Protocol.TCP).value, None if protocol is Protocol.ICMP else port or 80)]
    else:
        flows = sorted({f for ports in serves.values() for f in ports}, key=lambda f: (f[0], f[1] or 0))
    refs = sorted(f"{ns}/{name}" for ns, name in set(before.pods) & set(planned.world.pods)
                  if before.pods[(ns, name)].ip is not None) + sorted(externals)
    changes = [c for c in verdict_changes(before, planned.world, refs, flows)
               if port is not None or protocol is not None or (c.protocol, c.port) in serves.get(c.dst, set())]
    if names:
        changes = [c if c.src not in names and c.dst not in names else
                   dataclasses.replace(c, src=names.get(c.src, c.src), dst=names.get(c.dst, c.dst)) for c in changes]
    if as_json:
        print_json({"lab": lab, "flows": [f"{p}/{n}" for p, n in flows], "endpoints": len(refs),
                    "changes": [c.as_dict() for c in changes], "unplaced_pods": list(planned.unplaced)})
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
    if planned.unplaced:
        errors.print(f"new pods not in the diff (no address until applied): {', '.join(planned.unplaced)}")


def _externals(runtime) -> dict[str, tuple[str, set[tuple[str, int]]]]:  # type: ignore[no-untyped-def]
    """The lab's external servers by fabric address (as the probes and the oracle see them): name, ports."""
    from lab.targets import node_addresses

    address = node_addresses(runtime, "external")
    return {address[ext.name]: (ext.name, {(p.protocol.lower(), p.containerPort) for p in ext.ports})
            for ext in runtime.spec.externals}
