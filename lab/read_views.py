"""What `lab status`, `lab get` and `lab explain` print, drawn on the console they are given.

A command draws on its own process's console when it reads the store itself (the controller is down). When
the controller is up, the controller draws the same text on a console shaped like the caller's terminal
(`lab/controller/show.py`) and the caller only prints it (`lab/thin_client.py`). One drawing for both ways,
so they cannot differ.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from lab.console import print_error, print_json, print_rows
from lab.summary import render_health, render_machines, render_status

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


def unknown_kind(what: str) -> str:
    return f"can get {', '.join(GET_KINDS)}; not {what!r}"


def print_status(data: dict[str, Any], as_json: bool, out: Console) -> int:
    """The lab's hosts, pods and health (`data`: lab_status with its controller's and other machines'
    health); the exit code: 1 when the lab is degraded."""
    if as_json:
        print_json(data, out)
    else:
        render_status(data, out)
        render_health(data["controller"], out)
        render_machines(data["machines"], out)
    return 1 if data["controller"]["degraded"] or any(m["degraded"] for m in data["machines"].values()) else 0


def print_explain(found: Any, as_json: bool, out: Console, err: Console) -> int:
    """`lab explain`: the verdict's trace (from `lab.controller.reads.explain_verdict`), or the message
    saying why there is none."""
    from policy_dataplane.policy.explain import render, to_json

    if isinstance(found, str):
        return print_error(found, err)
    if as_json:
        print_json(to_json(found), out)
    else:
        out.print(render(found))
    return 0


def print_objects(what: str, objects: list[dict[str, Any]], as_json: bool, out: Console) -> None:
    """`lab get WHAT`: the stored objects (from `lab.controller.reads.get_answer`)."""
    if as_json:
        print_json([o["doc"] for o in objects], out)
        return
    rows = []
    for o in objects:
        doc = o["doc"]
        labels = ",".join(f"{k}={v}" for k, v in sorted((doc.get("metadata", {}).get("labels") or {}).items()))
        summary = labels if what != "policies" else policy_summary(doc)
        rows.append([o["kind"], o["namespace"], o["name"], summary, o["host"], o["ip"]])
    print_rows(what, ["kind", "namespace", "name", "labels" if what != "policies" else "spec", "host", "ip"],
               rows, out)


def policy_summary(doc: dict[str, Any]) -> str:
    spec = doc.get("spec") or {}
    selector = spec.get("selector") or spec.get("podSelector") or "all()"
    return (f"order={spec.get('order', '-')} selects {selector} ingress={len(spec.get('ingress') or [])} "
            f"egress={len(spec.get('egress') or [])}")


__all__ = ["GET_KINDS", "print_error", "print_explain", "print_objects", "print_status", "policy_summary", "unknown_kind"]
