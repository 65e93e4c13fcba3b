"""`lab apply -f` and `lab delete`: all or nothing, like kubectl.

Every document is validated by the policy model first; only if all of them are valid does anything change:
the store in one transaction, then the fabric (new pods plumbed, deleted pods removed, announcements and
responders updated), then the dataplane.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bgp.ipam import IpamError
from lab import converge, warm
from lab.addresses import PodAddressError, assign_addresses, fixed_ip_of, release_addresses
from lab.fabric import Fabric
from lab.limits import Limits, default_limits
from lab.objects import IP_ANNOTATION
from lab.placement import least_loaded_host
from lab.pod_plans import pod_plans, responder_targets
from lab.runtime import LabRuntime, one_change_at_a_time
from lab.store import ObjectKey, Placement
from policy_dataplane.policy.documents import load_sources
from policy_dataplane.policy.safeyaml import InputError, load_all, read_text
from topology.engine import Progress

CLUSTER_SCOPED = {"Namespace", "GlobalNetworkPolicy", "GlobalNetworkSet", "Tier", "StagedGlobalNetworkPolicy",
                  "ExternalService", "HostEndpoint", "FelixConfiguration"}


class ApplyError(ValueError):
    pass


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def counts(self) -> str:
        return (f"{len(self.created)} created, {len(self.configured)} configured, {len(self.unchanged)} unchanged, "
                f"{len(self.deleted)} deleted")

    def lines(self) -> list[str]:
        return ([f"{k} created" for k in self.created] + [f"{k} configured" for k in self.configured]
                + [f"{k} unchanged" for k in self.unchanged] + [f"{k} deleted" for k in self.deleted])


def key_of(doc: dict[str, Any]) -> ObjectKey:
    kind = str(doc.get("kind"))
    if kind == "NetworkPolicy" and str(doc.get("apiVersion", "")).startswith("projectcalico.org/"):
        kind = "CalicoNetworkPolicy"  # a Calico and a Kubernetes policy may share a name
    meta = doc.get("metadata") or {}
    namespace = "" if kind in CLUSTER_SCOPED else str(meta.get("namespace") or "default")
    return ObjectKey(kind, namespace, str(meta.get("name")))


def sourced_documents(sources: Iterable[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """(source, document) for every YAML document, `kind: List` unpacked (validation comes from the model)."""
    docs: list[tuple[str, dict[str, Any]]] = []
    for source, text in sources:
        for doc in load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                docs.extend((source, item) for item in doc["items"])
            elif doc is not None:
                docs.append((source, doc))
    return docs


def raw_documents(sources: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    return [doc for _, doc in sourced_documents(sources)]


def read_sources(files: Iterable[Path], limits: Limits | None = None) -> list[tuple[str, str]]:
    """The text of each file: regular files within the size limit, UTF-8 (see policy_dataplane.policy.safeyaml)."""
    max_bytes = (limits or default_limits()).fileBytes
    sources = []
    for path in files:
        try:
            sources.append((str(path), read_text(path, max_bytes)))
        except InputError as exc:
            raise ApplyError(str(exc)) from None
    return sources


def validate(sources: list[tuple[str, str]], backend: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Raises the model's DocumentsInvalid (every problem, naming file, object and field) or returns
    (source, document) pairs. With a backend, every policy is also compiled and rendered for it: what a
    host could not be given is refused here, before the store changes."""
    from policy_dataplane.dataplane.backends import get_backend
    from policy_dataplane.dataplane.preflight import unprogrammable
    from policy_dataplane.policy.model import Policy

    objects = load_sources(sources)
    if backend is not None:
        problems = unprogrammable((o for o in objects if isinstance(o, Policy)), get_backend(backend))
        if problems:
            raise ApplyError(f"{len(problems)} problem(s), nothing applied:\n" + "\n".join(f"  - {p}" for p in problems))
    return sourced_documents(sources)


def apply_files(runtime: LabRuntime, files: Iterable[Path], progress: Progress | None = None) -> ApplyReport:
    return apply_sources(runtime, read_sources(files, runtime.spec.effective_limits()), progress)


@one_change_at_a_time
def apply_sources(runtime: LabRuntime, sources: list[tuple[str, str]], progress: Progress | None = None
                  ) -> ApplyReport:
    from lab.services import ServicesError, prepare

    try:  # gateways of ExternalServices, ClusterIPs of Services
        sourced = prepare(runtime, validate(sources, runtime.spec.dataplane))
    except ServicesError as exc:
        raise ApplyError(str(exc)) from None
    docs = [doc for _, doc in sourced]
    report = ApplyReport()
    _check_references(runtime, docs)
    _check_limits(runtime, docs)
    new_pods: list[tuple[str, ObjectKey, dict[str, Any]]] = []
    before = {key_of(doc): runtime.store.get_object(key_of(doc)) for doc in docs}
    puts: list[tuple[ObjectKey, dict[str, Any]]] = []
    with runtime.store.transaction():
        base_revision = runtime.store.revision
        load = Counter(p.host for p in runtime.store.placements())
        hosts = runtime.host_names()
        for source, doc in sourced:
            key = key_of(doc)
            old = runtime.store.get_object(key)
            if old == doc:
                report.unchanged.append(str(key))
                continue
            if key.kind == "Pod":
                doc = _with_node(doc, old, hosts, load)
                if old is None:
                    new_pods.append((source, key, doc))
            runtime.store.put_object(key, doc)
            puts.append((key, doc))
            (report.created if old is None else report.configured).append(str(key))
        placed = _assign_addresses(runtime, new_pods)
        _check_programmable(runtime, base_revision, puts, placed)  # the world as the transaction would commit it
    try:
        if new_pods:
            _plumb_new_pods(runtime, [key for _, key, _ in new_pods], progress)
        converge.sync(runtime)
    except Exception as exc:
        raise ApplyError(f"nothing applied: {roll_back(runtime, before, exc)}") from None
    return report


def roll_back(runtime: LabRuntime, before: dict[ObjectKey, dict[str, Any] | None], cause: Exception) -> str:
    """After a change reached the store but could not be carried out (a host refused its program, a pod could
    not be plumbed): the objects go back to what they were, pods that came with the change are removed again
    and every host is brought back in line with the restored store. Hosts whose transaction failed kept their
    last good program (nft and iptables-restore apply all or nothing); hosts that took it are replaced with
    the restored program. Returns what happened, for the error."""

    warm.forget(runtime.lab)
    # Hosts are programmed at once: those that took the change before another refused it hold a program no
    # saved state records. Without the state, the re-sync below replaces every host's filter as a whole.
    runtime.dataplane_state.unlink(missing_ok=True)
    added_pods = [k for k, old in before.items() if k.kind == "Pod" and old is None]
    plans = pod_plans(runtime, only={f"{k.namespace}/{k.name}" for k in added_pods})
    with runtime.store.transaction():
        for key, old in before.items():
            if old is None:
                runtime.store.delete_object(key)
            else:
                runtime.store.put_object(key, old)
        release_addresses(runtime, [(p.namespace, p.name) for p in plans])
    message = f"the change failed ({cause}); the store was rolled back"
    try:
        if plans:
            fabric = Fabric(runtime)
            fabric.reload_responder(responder_targets(runtime))
            fabric.remove_pods(plans)
            fabric.update_announcements({p.host for p in plans})
        converge.sync(runtime)
    except Exception as again:  # the kernel keeps its last good program; the store says what it should be
        message += f", but the hosts could not be brought back in line ({again}): run `lab apply` again"
    return message


def _check_programmable(runtime: LabRuntime, base_revision: int, puts: list[tuple[ObjectKey, dict[str, Any]]],
                        placed: list[Placement]) -> None:
    """Refuse the change (inside its transaction) if the lab's backend could not give a host its program as
    the change would leave it. The lab's controller checks on a snapshot of its warm world (lab/controller/
    preflight.py: ~30 ms at bank scale) when that world is `base_revision`; otherwise every host's program is
    compiled from the store as it stands in the transaction (~1 s at bank scale)."""
    problems = _warm_check(runtime, base_revision, puts, placed)
    if problems is None:
        problems = _cold_check(runtime)
    if problems:
        raise ApplyError(f"{len(problems)} problem(s), nothing applied:\n" + "\n".join(f"  - {p}" for p in problems))


def _warm_check(runtime: LabRuntime, base_revision: int, puts: list[tuple[ObjectKey, dict[str, Any]]],
                placed: list[Placement]) -> list[str] | None:
    """The controller's answer; None when it has none (not running, or its world is at another revision)."""
    from lab.controller import launcher

    if launcher.running_pid(runtime.paths) is None:
        return None
    request = {"op": "check", "revision": base_revision,
               "placed": [[p.namespace, p.name, p.host, p.ip] for p in placed],
               "puts": [[[k.kind, k.namespace, k.name], doc] for k, doc in puts]}
    answer = launcher.warm_read(runtime.paths, request, timeout=60.0)
    if answer is None or not answer.get("ok") or not answer.get("warm"):
        return None
    return [str(p) for p in answer["problems"]]


def _cold_check(runtime: LabRuntime) -> list[str]:
    from lab.stored_world import world_of
    from policy_dataplane.dataplane.backends import get_backend
    from policy_dataplane.dataplane.compile import compile_hosts
    from policy_dataplane.dataplane.preflight import unprogrammable_hosts

    placement = {node: dict(pods) for node, pods in runtime.placement().items()}
    return unprogrammable_hosts(compile_hosts(world_of(runtime), placement), get_backend(runtime.spec.dataplane))


def _check_references(runtime: LabRuntime, docs: list[dict[str, Any]]) -> None:
    namespaces = {k.name for k, _ in runtime.store.objects(kinds=["Namespace"])}
    namespaces |= {key_of(d).name for d in docs if d.get("kind") == "Namespace"}
    tiers = {k.name for k, _ in runtime.store.objects(kinds=["Tier"])} | {"default"}
    tiers |= {key_of(d).name for d in docs if d.get("kind") == "Tier"}
    problems = []
    hosts = set(runtime.host_names())
    nodes = hosts | {e.name for e in runtime.spec.externals}
    for doc in docs:
        key = key_of(doc)
        if key.kind == "HostEndpoint" and (doc.get("spec") or {}).get("node") not in nodes:
            problems.append(f"{key}: spec.node: no host or external server {doc['spec'].get('node')!r} in lab "
                            f"{runtime.lab!r} (nodes: {', '.join(sorted(nodes))})")
        tier = (doc.get("spec") or {}).get("tier") if key.kind in POLICY_KINDS else None
        if tier is not None and tier not in tiers:
            problems.append(f"{key}: spec.tier: tier {tier!r} does not exist in lab {runtime.lab!r} "
                            f"(tiers: {', '.join(sorted(tiers))})")
        if key.namespace and key.namespace not in namespaces:
            problems.append(f"{key}: metadata.namespace: namespace {key.namespace!r} does not exist in lab {runtime.lab!r}")
        if key.kind == "Pod":
            problems += [f"{key}: {p}" for p in _container_problems(doc)]
        node = (doc.get("spec") or {}).get("nodeName") if key.kind == "Pod" else None
        if node is not None and node not in hosts:
            problems.append(f"{key}: spec.nodeName: no host {node!r} (hosts: {', '.join(sorted(hosts))})")
    if problems:
        raise ApplyError(f"{len(problems)} problem(s), nothing applied:\n" + "\n".join(f"  - {p}" for p in problems))


def _container_problems(doc: dict[str, Any]) -> list[str]:
    """A Pod that asks for the docker runtime (annotation netpol-lab.io/runtime) names a valid image/command."""
    from lab.objects import RUNTIME_ANNOTATION
    from topology.docker_images import container_problems

    runtime = ((doc.get("metadata") or {}).get("annotations") or {}).get(RUNTIME_ANNOTATION)
    if runtime is None or runtime == "netns":
        return []
    if runtime != "docker":
        return [f"metadata.annotations[{RUNTIME_ANNOTATION}]: {runtime!r} must be netns or docker"]
    main = ((doc.get("spec") or {}).get("containers") or [{}])[0]
    command = main.get("command")
    if command is not None and not (isinstance(command, list) and all(isinstance(a, str) for a in command)):
        return ["spec.containers[0].command: must be a list of strings"]
    return [f"spec.containers[0].{p.removeprefix('field ')}" for p in container_problems(main.get("image"), command)]


POLICY_KINDS = {"NetworkPolicy", "CalicoNetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy",
                "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy"}


def _check_limits(runtime: LabRuntime, docs: list[dict[str, Any]]) -> None:
    """The lab's limits (lab.limits: pods, policies, rules per policy) with this apply, before the store
    changes."""
    from lab.limits import LIMITS_ENV

    limits = runtime.spec.effective_limits()
    stored = set(runtime.store.object_keys())
    keys = {key_of(d) for d in docs}
    problems = []
    for what, kinds in (("pods", {"Pod"}), ("policies", POLICY_KINDS)):
        total = sum(1 for k in stored | keys if k.kind in kinds)
        if total > getattr(limits, what):
            problems.append(f"the lab would hold {total} {what}, more than its limit of {getattr(limits, what)} "
                            f"(raise it with `limits: {{{what}: N}}` in the lab file or {LIMITS_ENV}={what}=N)")
    for doc in docs:
        spec: dict[str, Any] = doc.get("spec") or {}
        rules = sum(len(spec.get(d) or []) for d in ("ingress", "egress"))
        if key_of(doc).kind in POLICY_KINDS and rules > limits.rules:
            problems.append(f"{key_of(doc)}: spec: {rules} rules, more than the limit of {limits.rules} per policy "
                            f"(raise it with `limits: {{rules: N}}` in the lab file)")
    if problems:
        raise ApplyError(f"{len(problems)} problem(s), nothing applied:\n" + "\n".join(f"  - {p}" for p in problems))


def _with_node(doc: dict[str, Any], old: dict[str, Any] | None, hosts: list[str],
               load: Counter[str]) -> dict[str, Any]:
    """A new pod gets a host (its nodeName, or the least loaded); an existing one keeps its host."""

    spec = dict(doc.get("spec") or {})
    if old is not None:
        spec["nodeName"] = old["spec"]["nodeName"]
    else:
        spec["nodeName"] = spec.get("nodeName") or least_loaded_host(hosts, load)
        load[spec["nodeName"]] += 1
    return {**doc, "spec": spec}


def _assign_addresses(runtime: LabRuntime, pods: list[tuple[str, ObjectKey, dict[str, Any]]]) -> list[Placement]:
    """Addresses for the new pods in one IPAM pass, as the placements recorded; a refusal names the file,
    the pod and the field."""
    if not pods:
        return []  # a policy or label change: no IPAM load (~0.1 s at bank scale)
    pods = sorted(pods, key=lambda item: fixed_ip_of(item[2]) is None)  # fixed first: never taken
    wanted = [(key.namespace, key.name, doc["spec"]["nodeName"], fixed_ip_of(doc)) for _, key, doc in pods]
    try:
        ips = assign_addresses(runtime, wanted)
    except PodAddressError as exc:
        source, key, doc = pods[exc.index]
        where = (f"metadata.annotations[{IP_ANNOTATION}]" if fixed_ip_of(doc) is not None
                 else f"spec.nodeName ({doc['spec']['nodeName']})")
        raise ApplyError(f"nothing applied: {source}: {key}: {where}: {exc.cause}") from None
    except IpamError as exc:
        raise ApplyError(f"nothing applied: {exc}") from None
    return [Placement(namespace, name, host, str(ip)) for (namespace, name, host, _), ip in zip(wanted, ips, strict=True)]


def _plumb_new_pods(runtime: LabRuntime, keys: list[ObjectKey], progress: Progress | None) -> None:
    fabric = Fabric(runtime)
    wanted = {f"{k.namespace}/{k.name}" for k in keys}
    plans = pod_plans(runtime, only=wanted)
    fabric.add_pods(plans, progress)
    fabric.update_announcements({p.host for p in plans})
    fabric.reload_responder(responder_targets(runtime))


def with_namespace_contents(runtime: LabRuntime, keys: list[ObjectKey]) -> list[ObjectKey]:
    """The keys plus, for each Namespace among them, every object stored in it (Pods, policies, NetworkSets),
    as Kubernetes deletes a namespace's contents with it; contents first, each key once."""
    namespaces = {k.name for k in keys if k.kind == "Namespace"}
    if not namespaces:
        return keys
    contents = sorted((k for k in runtime.store.object_keys() if k.namespace in namespaces and k not in keys), key=str)
    return contents + keys


@one_change_at_a_time
def delete_keys(runtime: LabRuntime, keys: list[ObjectKey]) -> ApplyReport:
    from lab.services import with_owned

    report = ApplyReport()
    missing = [str(k) for k in keys if runtime.store.get_object(k) is None]
    if missing:
        raise ApplyError("nothing deleted: not found: " + ", ".join(missing))
    keys = with_owned(runtime, with_namespace_contents(runtime, keys))  # an ExternalService takes its gateway
    pods = [k for k in keys if k.kind == "Pod"]
    plans = pod_plans(runtime, only={f"{k.namespace}/{k.name}" for k in pods})
    with runtime.store.transaction():
        for key in keys:
            runtime.store.delete_object(key)
            report.deleted.append(str(key))
        release_addresses(runtime, [(k.namespace, k.name) for k in pods])
    if plans:
        fabric = Fabric(runtime)
        fabric.reload_responder(responder_targets(runtime))  # its sockets would keep the namespaces alive
        fabric.remove_pods(plans)
        fabric.update_announcements({p.host for p in plans})
    converge.sync(runtime)
    return report


def delete_files(runtime: LabRuntime, files: Iterable[Path]) -> ApplyReport:
    docs = raw_documents(read_sources(files))
    return delete_keys(runtime, [key_of(d) for d in docs])


KIND_ALIASES = {
    "pod": "Pod", "pods": "Pod", "po": "Pod", "namespace": "Namespace", "ns": "Namespace",
    "networkpolicy": "NetworkPolicy", "netpol": "NetworkPolicy", "caliconetworkpolicy": "CalicoNetworkPolicy",
    "cnp": "CalicoNetworkPolicy", "globalnetworkpolicy": "GlobalNetworkPolicy",
    "gnp": "GlobalNetworkPolicy", "networkset": "NetworkSet", "globalnetworkset": "GlobalNetworkSet",
    "tier": "Tier", "stagednetworkpolicy": "StagedNetworkPolicy",
    "stagedglobalnetworkpolicy": "StagedGlobalNetworkPolicy",
    "stagedkubernetesnetworkpolicy": "StagedKubernetesNetworkPolicy",
    "service": "Service", "services": "Service", "svc": "Service",
    "externalservice": "ExternalService", "externalservices": "ExternalService",
    "hostendpoint": "HostEndpoint", "hostendpoints": "HostEndpoint", "hep": "HostEndpoint",
    "felixconfiguration": "FelixConfiguration", "serviceaccount": "ServiceAccount", "sa": "ServiceAccount",
}


def key_for(kind: str, name: str) -> ObjectKey:
    """`pod dev/web` to its store key. A namespaced kind without `NS/` means namespace `default`."""
    canonical = KIND_ALIASES.get(kind.lower(), kind)
    if canonical in CLUSTER_SCOPED:
        return ObjectKey(canonical, "", name)
    namespace, _, short = name.rpartition("/")
    return ObjectKey(canonical, namespace or "default", short)


def parse_label_changes(changes: list[str]) -> dict[str, str | None]:
    """`k=v` sets, `k-` removes (kubectl label syntax)."""
    out: dict[str, str | None] = {}
    for change in changes:
        if change.endswith("-") and "=" not in change:
            out[change[:-1]] = None
        elif "=" in change:
            k, _, v = change.partition("=")
            out[k] = v
        else:
            raise ApplyError(f"label change {change!r}: use key=value to set or key- to remove")
    return out


@one_change_at_a_time
def label(runtime: LabRuntime, key: ObjectKey, changes: dict[str, str | None]) -> ApplyReport:
    """Sets/removes labels on a stored Pod or Namespace, validated by the model like any apply."""


    doc = runtime.store.get_object(key)
    if doc is None:
        raise ApplyError(f"{key}: not found in lab {runtime.lab!r}")
    new = copy.deepcopy(doc)
    labels = new.setdefault("metadata", {}).setdefault("labels", {}) or {}
    for k, v in changes.items():
        if v is None:
            labels.pop(k, None)
        else:
            labels[k] = v
    new["metadata"]["labels"] = labels
    validate([(f"label {key}", yaml.safe_dump(new))])
    report = ApplyReport()
    if new == doc:
        report.unchanged.append(str(key))
        return report
    with runtime.store.transaction():
        runtime.store.put_object(key, new)
    report.configured.append(str(key))
    converge.sync(runtime)
    return report
