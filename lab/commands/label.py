"""`lab label pod NS/POD k=v k-` and `lab label ns NAME k=v`; `lab get pods|namespaces|policies|...`."""

from __future__ import annotations

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, fail, open_lab, run_change
from lab.read_views import GET_KINDS, print_objects, unknown_kind
from lab.tables import print_table


@app.command(name="label", rich_help_panel="Policy")
def label_(
    kind: str = typer.Argument(..., help="pod or ns"),
    name: str = typer.Argument(..., help="NS/POD for pods, NAME for namespaces"),
    changes: list[str] = typer.Argument(..., help="key=value sets, key- removes"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
) -> None:
    """Change labels of a pod or namespace; filters follow at once."""
    from lab.apply import key_for, label, parse_label_changes

    if kind.lower() not in ("pod", "pods", "po", "ns", "namespace", "namespaces"):
        fail(f"can label pods and namespaces, not {kind!r}")
    with open_lab(lab) as runtime:
        run_change(lambda: label(runtime, key_for(kind, name), parse_label_changes(changes)))


@app.command(rich_help_panel="Policy")
def get(
    what: str = typer.Argument(..., help="pods, namespaces, policies, networksets, services, externalservices, "
                                            "hostendpoints or serviceaccounts"),
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="the stored documents, as JSON"),
) -> None:
    """List the desired state the lab holds."""
    from lab import thin_client

    if what not in GET_KINDS:
        fail(unknown_kind(what))
    if what == "services" and not as_json:
        return _print_services(lab)
    code = thin_client.show(lab, "get", {"what": what, "json": as_json})  # from the controller's memory
    if code is not None:
        raise typer.Exit(code)
    from lab.controller import launcher
    from lab.controller.reads import StoreView, get_answer

    with open_lab(lab) as runtime:  # no controller answers: say so, and read the store
        errors.print(launcher.down_note(runtime.paths))
        answer = get_answer(StoreView().follow(runtime.store), GET_KINDS[what])
    print_objects(what, answer["objects"], as_json, console)


def _print_services(lab: str) -> None:
    """ClusterIP, ports (port -> targetPort) and the ready endpoints behind each Service."""
    from lab.services import lab_services

    runtime = open_lab(lab)
    try:
        state = lab_services(runtime)
    finally:
        runtime.close()
    rows = []
    for svc in state.endpoints():
        ports = ", ".join(f"{p.port}/{p.protocol}->{p.target}" for p in svc.service.ports)
        eps = sorted({f"{e.backend.ip}:{e.port}" for _, endpoints in svc.by_port for e in endpoints})
        rows.append((svc.service.namespace, svc.service.name, str(svc.cluster_ip), ports, " ".join(eps) or "<none>"))
    print_table(console, "services", ("namespace", "name", "cluster-ip", "ports", "endpoints"), rows)
