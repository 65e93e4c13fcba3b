"""`lab explain SRC DST --protocol P --port N [--json] [-f FILE ...]`: which policy decides a flow, and why.

With `-f` files it works from the files alone (no lab needed); otherwise from the running lab's state.
SRC and DST are `NS/POD`, a node of the running lab (an external server such as `tasks`, a host) or an IP
address (an IP of a pod means that pod; any other is an outside host).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, fail, print_json, require_root

if TYPE_CHECKING:
    from policy_dataplane.policy.world import World


class NoLabState(RuntimeError):
    """The lab's current state is not available (the lab is not up)."""


def current_world(lab: str) -> tuple[World, dict[str, str]]:
    """The policy world of a running lab (its stored objects, pods with the addresses the lab gave them),
    and the fabric address of each node by name (so `tasks` means the external server)."""
    from lab.runtime import LabNotUp, LabRuntime
    from lab.stored_world import world_of
    from lab.targets import node_addresses

    try:
        runtime = LabRuntime.open(lab)
    except LabNotUp as exc:
        raise NoLabState(f"{exc} (or explain from files alone: lab explain SRC DST -f FILE ...)") from None
    with runtime:
        return world_of(runtime), node_addresses(runtime)


def world_from_files(files: list[Path]) -> World:
    from policy_dataplane.policy.documents import load_files
    from policy_dataplane.policy.world import World

    return World.from_objects(load_files(files))


@app.command(rich_help_panel="Policy")
def explain(
    src: str = typer.Argument(..., help="source: NS/POD, a node of the lab (e.g. an external) or an IP address"),
    dst: str = typer.Argument(..., help="destination: NS/POD, svc/NS/NAME (a Service), a node of the lab or an IP"),
    protocol: str = typer.Option("TCP", "--protocol", "-p", help="TCP, UDP, SCTP, ICMP, ICMPv6 or a number"),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="destination port"),
    icmp_type: Optional[int] = typer.Option(None, "--icmp-type"),
    icmp_code: Optional[int] = typer.Option(None, "--icmp-code"),
    files: list[Path] = typer.Option([], "-f", "--filename", help="work from these YAML files alone"),
    src_ip: Optional[str] = typer.Option(None, "--src-ip", help="the source pod's IP (files without addresses)"),
    dst_ip: Optional[str] = typer.Option(None, "--dst-ip", help="the destination pod's IP"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="machine-readable trace"),
) -> None:
    """Walk through the tiers, policies and rules that decide whether SRC may open a flow to DST."""
    if dst.startswith("svc/"):
        if files:
            fail("a Service destination needs the running lab (its endpoints): leave out -f")
        return explain_service(lab, src, dst, protocol, port, as_json)
    args = {"src": src, "dst": dst, "protocol": protocol, "port": port, "icmp_type": icmp_type,
            "icmp_code": icmp_code, "src_ip": src_ip, "dst_ip": dst_ip, "json": as_json}
    if not files:
        from lab import thin_client

        require_root(f"lab {lab!r}")
        code = thin_client.show(lab, "explain", args)  # on the world the controller enforces
        if code is not None:
            raise typer.Exit(code)
        _say_controller_down(lab)
    from lab.controller.reads import explain_verdict
    from lab.read_views import print_explain
    from policy_dataplane.policy.documents import DocumentsInvalid

    try:
        world, nodes = (world_from_files(files), {}) if files else current_world(lab)
    except (DocumentsInvalid, NoLabState) as exc:
        fail(str(exc))
    raise typer.Exit(print_explain(explain_verdict(world, nodes, args), as_json, console, errors))


def _say_controller_down(lab: str) -> None:
    """Before the cold path builds the world from the store (or says the lab is not up): the controller is
    started again if it died, and the reader told that this read is cold."""
    from lab.console import restart_controller_noted
    from lab.controller import launcher
    from lab.stores import store_exists
    from topology.names import LabPaths

    paths = LabPaths.for_lab(lab)
    if store_exists(paths):
        restart_controller_noted(paths)
        errors.print(launcher.down_note(paths))


def explain_service(lab: str, src: str, dst: str, protocol: str, port: int | None, as_json: bool) -> None:
    """The Service's ClusterIP, the backend each of its endpoints would be, and the policy decision for each
    (DNAT happens before policy, so policy judges the flow to the backend pod)."""
    from rich.text import Text

    from lab import service_targets
    from lab.runtime import LabRuntime
    from lab.stored_world import world_of
    from lab.targets import node_addresses
    from policy_dataplane.policy.explain import render, to_json

    if port is None:
        fail("a Service destination needs --port (the Service's port)")
    runtime = LabRuntime.open(lab)
    try:
        world = world_of(runtime)
        src = node_addresses(runtime).get(src, src)
        cluster_ip, _ = service_targets.backends(runtime, dst, port, protocol)
        found = service_targets.verdicts(world, runtime, src, dst, protocol, port)
    except (KeyError, ValueError) as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))
    finally:
        runtime.close()
    if as_json:
        print_json({"service": service_targets.service_key(dst), "cluster_ip": cluster_ip, "port": port,
                    "protocol": protocol, "allowed": bool(found) and all(v.allowed for _, v in found),
                    "backends": [{"backend": c.backend, "port": c.port, "verdict": to_json(v)} for c, v in found]})
        return
    console.print(Text.assemble((f"{dst} {cluster_ip}:{port}/{protocol.upper()}", "bold"),
                                f": DNAT to one of {len(found)} ready backend(s), then policy"))
    if not found:
        console.print(Text("no ready backend: the host rejects the flow", style="red"))
    for choice, v in found:
        console.print(Text(f"-> backend {choice.backend} port {choice.port}", style="bold"))
        console.print(render(v))
