"""`lab label pod NS/POD k=v k-` and `lab label ns NAME k=v`; `lab get pods|namespaces|policies|...`."""

from __future__ import annotations

import typer
from rich.table import Table

from lab.app import app
from lab.console import (
    LAB_OPTION_HELP,
    ask_controller,
    console,
    errors,
    fail,
    open_lab,
    print_json,
    print_rows,
    run_change,
)

GET_KINDS = {
    "pods": ["Pod"],
    "namespaces": ["Namespace"],
    "policies": ["NetworkPolicy", "CalicoNetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy",
                 "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy", "Tier"],
    "networksets": ["NetworkSet", "GlobalNetworkSet"],
    "services": ["Service"],
    "externalservices": ["ExternalService"],
    "hostendpoints": ["HostEndpoint", "FelixConfiguration"],
    "serviceaccounts": ["ServiceAccount"],
}


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
    if what not in GET_KINDS:
        fail(f"can get {', '.join(GET_KINDS)}; not {what!r}")
    if what == "services" and not as_json:
        return _print_services(lab)
    answer = ask_controller(lab, {"op": "get", "kinds": GET_KINDS[what]})
    if answer is None or not answer["ok"]:  # no controller: say so, and read the store
        from lab.controller import launcher
        from lab.controller.reads import StoreView, get_answer

        with open_lab(lab) as runtime:
            errors.print(launcher.down_note(runtime.paths))
            answer = get_answer(StoreView().follow(runtime.store), GET_KINDS[what])
    objects = answer["objects"]
    if as_json:
        print_json([o["doc"] for o in objects])
        return
    rows = []
    for o in objects:
        doc = o["doc"]
        labels = ",".join(f"{k}={v}" for k, v in sorted((doc.get("metadata", {}).get("labels") or {}).items()))
        summary = labels if what != "policies" else _policy_summary(doc)
        rows.append([o["kind"], o["namespace"], o["name"], summary, o["host"], o["ip"]])
    print_rows(what, ["kind", "namespace", "name", "labels" if what != "policies" else "spec", "host", "ip"], rows)


def _print_services(lab: str) -> None:
    """ClusterIP, ports (port -> targetPort) and the ready endpoints behind each Service."""
    from lab.services import lab_services

    runtime = open_lab(lab)
    try:
        state = lab_services(runtime)
    finally:
        runtime.close()
    table = Table(title="services", title_justify="left")
    for col in ("namespace", "name", "cluster-ip", "ports", "endpoints"):
        table.add_column(col)
    for svc in state.endpoints():
        ports = ", ".join(f"{p.port}/{p.protocol}->{p.target}" for p in svc.service.ports)
        eps = sorted({f"{e.backend.ip}:{e.port}" for _, endpoints in svc.by_port for e in endpoints})
        table.add_row(svc.service.namespace, svc.service.name, str(svc.cluster_ip), ports, " ".join(eps) or "<none>")
    console.print(table)


def _policy_summary(doc: dict) -> str:  # type: ignore[type-arg]
    spec = doc.get("spec") or {}
    selector = spec.get("selector") or spec.get("podSelector") or "all()"
    return f"order={spec.get('order', '-')} selects {selector} ingress={len(spec.get('ingress') or [])} egress={len(spec.get('egress') or [])}"
