"""Multi-document YAML (as `kubectl apply -f` / `calicoctl apply -f` take it) into validated model objects.

All or nothing: every document of every file is checked, every problem is collected, and if there is any
the whole load fails with one `DocumentsInvalid` listing each problem as
`file#doc Kind namespace/name: field: message`. `kind: List` documents are unpacked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml

from policy_dataplane.policy import calico, k8s
from policy_dataplane.policy.model import (
    FelixConfig,
    HostEndpoint,
    Namespace,
    NetworkSet,
    Pod,
    Policy,
    ServiceAccount,
    Tier,
)
from policy_dataplane.policy.safeyaml import InputError, load_all, read_text
from policy_dataplane.policy.validation import Invalid

ModelObject = Union[Namespace, Pod, NetworkSet, Policy, Tier, HostEndpoint, FelixConfig, ServiceAccount]

CALICO = "projectcalico.org/v3"
_Converter = Callable[[dict[str, Any], str], ModelObject]

# (apiVersion, kind) -> converter(document, source) -> model object
CONVERTERS: dict[tuple[str, str], _Converter] = {
    ("v1", "Namespace"): lambda d, s: k8s.namespace_from_doc(d),
    ("v1", "Pod"): lambda d, s: k8s.pod_from_doc(d),
    ("v1", "ServiceAccount"): lambda d, s: k8s.service_account_from_doc(d),
    ("networking.k8s.io/v1", "NetworkPolicy"): lambda d, s: k8s.network_policy_from_doc(d, source=s),
    (CALICO, "StagedKubernetesNetworkPolicy"): lambda d, s: k8s.network_policy_from_doc(d, staged=True, source=s),
    (CALICO, "NetworkPolicy"): lambda d, s: calico.policy_from_doc(d, global_=False, source=s),
    (CALICO, "GlobalNetworkPolicy"): lambda d, s: calico.policy_from_doc(d, global_=True, source=s),
    (CALICO, "StagedNetworkPolicy"): lambda d, s: calico.policy_from_doc(d, global_=False, staged=True, source=s),
    (CALICO, "StagedGlobalNetworkPolicy"): lambda d, s: calico.policy_from_doc(
        d, global_=True, staged=True, source=s
    ),
    (CALICO, "NetworkSet"): lambda d, s: calico.network_set_from_doc(d, global_=False),
    (CALICO, "GlobalNetworkSet"): lambda d, s: calico.network_set_from_doc(d, global_=True),
    (CALICO, "Tier"): lambda d, s: calico.tier_from_doc(d),
    (CALICO, "HostEndpoint"): lambda d, s: calico.host_endpoint_from_doc(d),
    (CALICO, "FelixConfiguration"): lambda d, s: calico.felix_configuration_from_doc(d),
}


def validated_elsewhere() -> dict[tuple[str, str], Callable[[dict[str, Any]], None]]:
    """Kinds an apply accepts that are not policy objects (Services, ExternalServices): their validators."""
    from services.objects import VALIDATORS

    return VALIDATORS


@dataclass(frozen=True)
class Problem:
    source: str  # "file#N" (N counts documents from 1)
    object: str  # "Kind namespace/name" as far as known
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source} {self.object}".strip()
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DocumentsInvalid(ValueError):
    """Nothing was loaded; `problems` lists every mistake found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s), nothing applied:\n" + "\n".join(f"  - {p}" for p in problems))


def _describe(doc: dict[str, Any]) -> str:
    kind = doc.get("kind", "?")
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = meta.get("name", "?") if meta else "?"
    ns = meta.get("namespace") if meta else None
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def _documents(text: str, source: str, problems: list[Problem]) -> list[tuple[str, Any]]:
    try:
        raw = load_all(text)
    except yaml.YAMLError as e:
        problems.append(Problem(source, "", "", f"not valid YAML: {e}"))
        return []
    if all(doc is None for doc in raw):
        problems.append(Problem(source, "", "", "the file holds no YAML document (it is empty)"))
        return []
    out: list[tuple[str, Any]] = []
    for i, doc in enumerate(raw, start=1):
        if doc is None:
            continue  # empty document (a stray '---')
        where = f"{source}#{i}"
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out += [(f"{where}.items[{j}]", item) for j, item in enumerate(doc["items"])]
        else:
            out.append((where, doc))
    return out


def _convert(where: str, doc: Any, problems: list[Problem]) -> ModelObject | None:
    if not isinstance(doc, dict):
        problems.append(Problem(where, "", "", "a document must be a mapping with apiVersion, kind, metadata"))
        return None
    api, kind = doc.get("apiVersion"), doc.get("kind")
    elsewhere = validated_elsewhere().get((str(api), str(kind)))
    if elsewhere is not None:  # a Service or ExternalService: checked here, no policy object
        try:
            elsewhere(doc)
        except Invalid as e:
            problems += [Problem(where, _describe(doc), f, m) for f, m in e.problems]
        return None
    converter = CONVERTERS.get((str(api), str(kind)))
    if converter is None:
        known = ", ".join(sorted({f"{a} {k}" for a, k in [*CONVERTERS, *validated_elsewhere()]}))
        problems.append(Problem(where, _describe(doc), "kind", f"unknown apiVersion/kind {api} {kind} (known: {known})"))
        return None
    try:
        return converter(doc, where)
    except Invalid as e:
        problems += [Problem(where, _describe(doc), f, m) for f, m in e.problems]
        return None


def load_text(text: str, source: str = "<text>") -> list[ModelObject]:
    """Validated objects of one YAML text; raises DocumentsInvalid listing every problem."""
    return load_sources([(source, text)])


def load_files(paths: Iterable[str | Path]) -> list[ModelObject]:
    """Validated objects of every file, in file and document order; all or nothing."""
    sources: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            sources.append((str(path), read_text(path)))
        except InputError as e:
            problems.append(Problem(str(path), "", "", str(e).removeprefix(f"{path}: ")))
    return load_sources(sources, problems)


def load_sources(sources: Iterable[tuple[str, str]], problems: list[Problem] | None = None) -> list[ModelObject]:
    problems = list(problems or [])
    objects: list[ModelObject] = []
    seen: dict[tuple[str, Any], str] = {}
    for source, text in sources:
        for where, doc in _documents(text, source, problems):
            obj = _convert(where, doc, problems)
            if obj is None:
                continue
            key = object_key(obj)
            if key in seen:
                problems.append(Problem(where, _describe(doc), "metadata.name", f"duplicate of {seen[key]}"))
            seen[key] = where
            objects.append(obj)
    if problems:
        raise DocumentsInvalid(problems)
    return objects


def load_documents(documents: Iterable[dict[str, Any]], source: str = "<documents>") -> list[ModelObject]:
    """Validated objects of already-parsed documents (dicts as YAML would give them); all or nothing."""
    problems: list[Problem] = []
    objects = []
    for i, doc in enumerate(documents, start=1):
        obj = _convert(f"{source}#{i}", doc, problems)
        if obj is not None:
            objects.append(obj)
    if problems:
        raise DocumentsInvalid(problems)
    return objects


def object_key(obj: ModelObject) -> tuple[str, Any]:
    """Identity of an object within a world (what a later apply replaces and delete removes)."""
    if isinstance(obj, Namespace):
        return ("Namespace", obj.name)
    if isinstance(obj, Pod):
        return ("Pod", obj.key)
    if isinstance(obj, NetworkSet):
        return ("NetworkSet", obj.key)
    if isinstance(obj, Tier):
        return ("Tier", obj.name)
    if isinstance(obj, HostEndpoint):
        return ("HostEndpoint", obj.name)
    if isinstance(obj, FelixConfig):
        return ("FelixConfiguration", "default")
    if isinstance(obj, ServiceAccount):
        return ("ServiceAccount", obj.key)
    return ("StagedPolicy" if obj.staged else "Policy", obj.key)


__all__ = ["ModelObject", "DocumentsInvalid", "Problem", "load_files", "load_text", "load_sources", "load_documents", "object_key"]
