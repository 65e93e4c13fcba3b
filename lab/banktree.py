"""The bank's own workflow: each service's egress as rule files in its folder, compiled into objects. Pure
apart from reading and writing the tree.

    DIR/CODEOWNERS                                         /services/<svc>/ @bank/<team>   (ownership)
    DIR/services/<svc>/service.yaml                        namespace, team, networkPolicy (opted in)
    DIR/services/<svc>/manifests/egress/<target>.rule      an internal call to service <target>
    DIR/services/<svc>/manifests/egress/external/<host>:<port>.rule    an external call, e.g. api.github.com:443

A rule file holds `owner: <team>` (who approved it) and an optional `reason: ...`; service.yaml
`namespace: ...`, `team: ...`, `networkPolicy: true|false`. Both are flat `key: value` lines (a subset of
YAML, read without a YAML parser: the bank has ~13,000 rule files). `compile_tree` turns a tree
into what the bank's generator makes (`policy_dataplane.policy.bankgen`): Namespaces; per service a Pod with
`app: <svc>`, the opt-in label and `bank.com/egress-s-<target>: "true"` per internal rule, and an ingress
NetworkPolicy admitting pods with its egress label; and for external rules one ExternalService per host
(hijackDns, every port asked for) plus `egress.monzo.com/allowed-<gateway>: "true"` on the calling pods.
Rules naming unknown services, and files that are not rules, are reported (file and reason).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policy_dataplane.dataplane.hostprogram import short_hash
from policy_dataplane.policy.bankgen import OPT_IN_LABEL, BankSpec, bank_documents, bank_egress, egress_label
from services.egress import allowed_label
from services.objects import EGRESS_API, EXTERNAL_SERVICE_KIND

RULE_SUFFIX = ".rule"
EXTERNAL_HOSTS = ("api.github.com", "hooks.slack.com", "api.stripe.com", "sqs.eu-west-1.amazonaws.com",
                  "api.twilio.com", "www.googleapis.com", "api.pagerduty.com", "api.sendgrid.com")
_SERVICE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$")


@dataclass(frozen=True)
class TreeSpec:
    bank: BankSpec = field(default_factory=lambda: BankSpec(fixed_ips=False))
    externals: int = 0  # distinct external hosts; services call 0-2 of them
    external_share: float = 0.2  # share of services with external rules
    teams: int = 40


@dataclass
class Compiled:
    documents: list[dict[str, Any]]
    problems: list[str]  # "path: what is wrong"
    externals: dict[str, tuple[str, tuple[int, ...]]]  # gateway name -> (host, ports)


def external_hosts(count: int) -> list[str]:
    return [*EXTERNAL_HOSTS[:count], *(f"api.partner-{i:02d}.example.com" for i in range(count - len(EXTERNAL_HOSTS)))]


def gateway_name(host: str) -> str:
    """The ExternalService of a host: its name with dashes (api.github.com -> api-github-com), at most 55."""
    name = host.replace(".", "-")
    return name if len(name) <= 55 else name[:46].rstrip("-") + "-" + short_hash(host, length=8)


# --- generate -----------------------------------------------------------------------------------------------


def generate(spec: TreeSpec, root: Path) -> int:
    """Write the synthetic bank's tree under `root`; returns how many rule files were written."""
    bank = spec.bank
    edges = bank_egress(bank)
    docs = {d["metadata"]["name"]: d for d in bank_documents(bank) if d["kind"] == "Pod"}
    rng = random.Random(bank.seed + 2)
    hosts = external_hosts(spec.externals)
    owners, written = [], 0
    for i, (svc, targets) in enumerate(edges.items()):
        team = f"team-{i % spec.teams:02d}"
        folder = root / "services" / svc
        egress_dir = folder / "manifests" / "egress"
        egress_dir.mkdir(parents=True, exist_ok=True)
        labels = docs[svc]["metadata"]["labels"]
        meta = {"namespace": docs[svc]["metadata"]["namespace"], "team": team,
                "networkPolicy": labels.get(OPT_IN_LABEL) == "true"}
        (folder / "service.yaml").write_text(_flat(meta))
        for target in targets:
            _write_rule(egress_dir / f"{target}{RULE_SUFFIX}", team, f"{svc} calls {target}")
            written += 1
        if hosts and rng.random() < spec.external_share:
            for host in sorted(rng.sample(hosts, min(len(hosts), rng.randint(1, 2)))):
                (egress_dir / "external").mkdir(exist_ok=True)
                _write_rule(egress_dir / "external" / f"{host}:443{RULE_SUFFIX}", team, f"{svc} calls {host}")
                written += 1
        owners.append(f"/services/{svc}/ @bank/{team}")
    (root / "CODEOWNERS").write_text("\n".join(owners) + "\n")
    return written


def _write_rule(path: Path, owner: str, reason: str) -> None:
    path.write_text(_flat({"owner": owner, "reason": reason}))


def _flat(data: dict[str, Any]) -> str:
    return "".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}\n" for k, v in data.items())


def read_flat(path: Path) -> dict[str, str]:
    """`key: value` lines (comments and blank lines skipped); ValueError naming the line otherwise."""
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        key, sep, value = text.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"line {number}: expected `key: value`")
        out[key.strip()] = value.strip()
    return out


# --- compile ------------------------------------------------------------------------------------------------


@dataclass
class _Service:
    name: str
    namespace: str
    opted_in: bool
    internal: list[tuple[str, Path]] = field(default_factory=list)
    external: list[tuple[str, int, Path]] = field(default_factory=list)


def _check_owner(rule: Path, team: str | None, problems: list[str]) -> None:
    """A rule is approved by the team owning the service (CODEOWNERS), when the tree says who that is."""
    try:
        owner = read_flat(rule).get("owner")
    except (OSError, ValueError) as exc:
        problems.append(f"{rule}: cannot read: {exc}")
        return
    if not owner:
        problems.append(f"{rule}: owner: every rule names the team that approved it")
    elif team is not None and owner != team:
        problems.append(f"{rule}: owner: {owner!r}, but CODEOWNERS gives the service to {team!r}")


def _read_service(folder: Path, problems: list[str], opt_in: bool | None, team: str | None) -> _Service | None:
    meta_path = folder / "service.yaml"
    try:
        meta = read_flat(meta_path)
    except (OSError, ValueError) as exc:
        problems.append(f"{meta_path}: cannot read: {exc}")
        return None
    namespace = meta.get("namespace", "")
    if not _SERVICE.match(namespace):
        problems.append(f"{meta_path}: namespace: must be a namespace name")
        return None
    if meta.get("networkPolicy", "false") not in ("true", "false"):
        problems.append(f"{meta_path}: networkPolicy: true or false")
    opted = meta.get("networkPolicy") == "true" if opt_in is None else opt_in
    svc = _Service(folder.name, namespace, opted)
    egress_dir = folder / "manifests" / "egress"
    for rule in sorted(egress_dir.glob(f"*{RULE_SUFFIX}")):
        _check_owner(rule, team, problems)
        svc.internal.append((rule.name[: -len(RULE_SUFFIX)], rule))
    for rule in sorted((egress_dir / "external").glob(f"*{RULE_SUFFIX}")):
        _check_owner(rule, team, problems)
        host, _, port = rule.name[: -len(RULE_SUFFIX)].rpartition(":")
        if not _HOST.match(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
            problems.append(f"{rule}: the name must be <host>:<port>.rule, e.g. api.github.com:443.rule")
            continue
        svc.external.append((host, int(port), rule))
    for other in sorted(egress_dir.glob("*")) if egress_dir.is_dir() else []:
        if other.name != "external" and not other.name.endswith(RULE_SUFFIX):
            problems.append(f"{other}: not a rule file (<service>.rule, external/<host>:<port>.rule)")
    return svc


def compile_tree(root: Path, port: int = 8080, opt_in: bool | None = None) -> Compiled:
    """The objects of a tree (see the module docstring). `opt_in` overrides every service's networkPolicy
    flag (the rollout's switch). Rules naming unknown services are left out and reported."""
    problems: list[str] = []
    folders = sorted(p for p in (root / "services").glob("*") if p.is_dir())
    if not folders:
        problems.append(f"{root / 'services'}: no service folders")
    services = {}
    teams = owners(root)
    for folder in folders:
        if not _SERVICE.match(folder.name):
            problems.append(f"{folder}: a service folder is named like a DNS label (lower-case letters, digits, '-')")
            continue
        svc = _read_service(folder, problems, opt_in, teams.get(folder.name))
        if svc is not None:
            services[svc.name] = svc
    gateways: dict[str, tuple[str, set[int]]] = {}
    for svc in services.values():
        for host, p, _ in svc.external:
            gateways.setdefault(gateway_name(host), (host, set()))[1].add(p)
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                                  for ns in sorted({s.namespace for s in services.values()})]
    for svc in services.values():
        labels = {"app": svc.name}
        if svc.opted_in:
            labels[OPT_IN_LABEL] = "true"
        for target, rule in svc.internal:
            if target not in services:
                problems.append(f"{rule}: names unknown service {target!r}")
                continue
            labels[egress_label(target)] = "true"
        for host, _, _ in svc.external:
            labels[allowed_label(gateway_name(host))] = "true"
        docs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": svc.name, "namespace": svc.namespace, "labels": labels, "annotations": {}},
                     "spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": port}]}]}})
        docs.append(_ingress_policy(svc, port))
    for name, (host, ports) in sorted(gateways.items()):
        docs.append({"apiVersion": EGRESS_API, "kind": EXTERNAL_SERVICE_KIND, "metadata": {"name": name},
                     "spec": {"dnsName": host, "hijackDns": True,
                              "ports": [{"port": p, "protocol": "TCP"} for p in sorted(ports)]}})
    return Compiled(docs, problems, {n: (h, tuple(sorted(p))) for n, (h, p) in gateways.items()})


def _ingress_policy(svc: _Service, port: int) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"ingress-{svc.name}", "namespace": svc.namespace},
            "spec": {"podSelector": {"matchLabels": {"app": svc.name, OPT_IN_LABEL: "true"}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {},
                                            "podSelector": {"matchLabels": {egress_label(svc.name): "true"}}}],
                                  "ports": [{"protocol": "TCP", "port": port}]}]}}


def owners(root: Path) -> dict[str, str]:
    """Service -> owning team, from CODEOWNERS."""
    out = {}
    for line in (root / "CODEOWNERS").read_text().splitlines() if (root / "CODEOWNERS").exists() else []:
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("/services/"):
            out[parts[0].strip("/").split("/")[1]] = parts[1].removeprefix("@bank/")
    return out


def dump(documents: list[dict[str, Any]]) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=False)


__all__ = ["TreeSpec", "Compiled", "generate", "compile_tree", "owners", "dump", "gateway_name", "external_hosts"]
