"""Helpers for the policy model's tests: worlds from fixtures or inline YAML."""

from __future__ import annotations

from pathlib import Path

from policy_dataplane.policy.documents import load_files, load_text
from policy_dataplane.policy.evaluate import verdict
from policy_dataplane.policy.world import World

FIXTURES = Path(__file__).parent / "fixtures"
MICROSEG = Path(__file__).parents[3] / "lab" / "scenarios" / "microseg"  # the demo's six cases


def fixture_world(*names: str) -> World:
    """A world from fixture files, or from the micro-segmentation scenario's case files."""
    return World.from_objects(load_files([FIXTURES / n if (FIXTURES / n).exists() else MICROSEG / n for n in names]))


def yaml_world(text: str) -> World:
    return World.from_objects(load_text(text, "test.yaml"))


def allowed(world: World, src: str, dst: str, protocol: str = "TCP", port: int | None = 80, **kw: object) -> bool:
    return verdict(world, src, dst, protocol, port, **kw).allowed  # type: ignore[arg-type]


def pod(ns: str, name: str, labels: dict[str, str] | None = None, ip: str | None = None,
        ports: str = "", sa: str | None = None) -> str:
    """A Pod document; ports as 'name:port/PROTO,...'."""
    lines = [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {ns}",
        f"  labels: {dict(labels or {})!r}".replace("'", '"'),
    ]
    if ip:
        lines.append(f"  annotations: {{cni.projectcalico.org/ipAddrs: '[\"{ip}\"]'}}")
    lines.append("spec:")
    if sa:
        lines.append(f"  serviceAccountName: {sa}")
    port_docs = []
    for spec in filter(None, ports.split(",")):
        pname, _, rest = spec.partition(":")
        number, _, proto = rest.partition("/")
        port_docs.append(f"{{name: {pname}, containerPort: {number}, protocol: {proto or 'TCP'}}}")
    lines.append(f"  containers: [{{name: c, ports: [{', '.join(port_docs)}]}}]")
    return "\n".join(lines) + "\n---\n"


def namespace(name: str, labels: dict[str, str] | None = None) -> str:
    return (
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        f"  labels: {dict(labels or {})!r}\n---\n".replace("'", '"')
    )
