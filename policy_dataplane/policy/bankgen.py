"""The synthetic bank (docs/ARCHITECTURE.md, Scenarios): ~1500 microservices declaring their egress as labels.

Each service `sNNNN` declares egress rules as files `svc/manifests/egress/<target>.rule`; the bank's
generator turns them into pod labels `bank.com/egress-s-<target>: "true"` and one ingress policy per
service admitting pods that carry its label, applied only to pods labelled
`bank.com/network-policy: "true"` (opt-in rollout). Optionally, the rollout's dry-run policy: a Calico
GlobalNetworkPolicy at order 9001 with Log then Allow, which shows what would be dropped.

`bank_objects(BankSpec())` gives model objects directly (fast, for benchmarks); `bank_yaml` the same as
`kubectl`-style multi-document YAML (what a user would apply); `bank_egress` the declared edges.
Deterministic for a given seed.
"""

from __future__ import annotations

import ipaddress
import json
import random
from dataclasses import dataclass
from typing import Any

import yaml

from policy_dataplane.policy.documents import ModelObject, load_documents, load_text

OPT_IN_LABEL = "bank.com/network-policy"
EGRESS_LABEL_PREFIX = "bank.com/egress-s-"
DRY_RUN_POLICY = "bank-dry-run"


@dataclass(frozen=True)
class BankSpec:
    services: int = 1500
    namespaces: int = 15
    min_egress: int = 5  # egress targets per service are uniform in [min, max]: mean 8.5 by default
    max_egress: int = 12
    opt_in_fraction: float = 1.0  # share of services already opted in to enforcement
    dry_run: bool = False  # add the order-9001 Log+Allow policy
    port: int = 8080
    pod_cidr: str = "10.48.0.0/16"
    fixed_ips: bool = True  # pods carry Calico's ipAddrs annotation; off: a lab's IPAM chooses
    seed: int = 1


def service_name(i: int) -> str:
    return f"s{i:04d}"


def egress_label(target: str) -> str:
    return f"{EGRESS_LABEL_PREFIX}{target}"


def bank_egress(spec: BankSpec) -> dict[str, list[str]]:
    """Service -> the services it declares egress to (its `.rule` files)."""
    rng = random.Random(spec.seed)
    names = [service_name(i) for i in range(spec.services)]
    edges: dict[str, list[str]] = {}
    for name in names:
        count = min(rng.randint(spec.min_egress, spec.max_egress), len(names) - 1)
        targets = rng.sample([n for n in names if n != name], count) if count > 0 else []
        edges[name] = sorted(targets)
    return edges


def _opted_in(spec: BankSpec) -> set[str]:
    rng = random.Random(spec.seed + 1)
    return {service_name(i) for i in range(spec.services) if rng.random() < spec.opt_in_fraction}


def bank_documents(spec: BankSpec) -> list[dict[str, Any]]:
    """The bank as Kubernetes/Calico documents (plain dicts, as they would be written in YAML)."""
    edges = bank_egress(spec)
    opted = _opted_in(spec)
    pool = ipaddress.ip_network(spec.pod_cidr)
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bank-{k:02d}"}}
        for k in range(spec.namespaces)
    ]
    for i, name in enumerate(edges):
        ns = f"bank-{i % spec.namespaces:02d}"
        labels = {"app": name}
        if name in opted:
            labels[OPT_IN_LABEL] = "true"
        for target in edges[name]:
            labels[egress_label(target)] = "true"
        annotations = {"cni.projectcalico.org/ipAddrs": json.dumps([str(pool[i + 1])])} if spec.fixed_ips else {}
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": spec.port}]}]},
            }
        )
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"ingress-{name}", "namespace": ns},
                "spec": {
                    "podSelector": {"matchLabels": {"app": name, OPT_IN_LABEL: "true"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {"namespaceSelector": {}, "podSelector": {"matchLabels": {egress_label(name): "true"}}}
                            ],
                            "ports": [{"protocol": "TCP", "port": spec.port}],
                        }
                    ],
                },
            }
        )
    if spec.dry_run:
        docs.append(dry_run_policy())
    return docs


def dry_run_policy() -> dict[str, Any]:
    """Order 9001, after every Kubernetes policy (order 1000): logs what they would drop, then allows it."""
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": DRY_RUN_POLICY},
        "spec": {
            "order": 9001,
            "selector": f'{OPT_IN_LABEL} == "true"',
            "types": ["Ingress"],
            "ingress": [{"action": "Log"}, {"action": "Allow"}],
        },
    }


def bank_yaml(spec: BankSpec) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(bank_documents(spec), Dumper=dumper, sort_keys=False)


def bank_objects(spec: BankSpec) -> list[ModelObject]:
    """Validated model objects of the bank (through the same converters as YAML input)."""
    return load_documents(bank_documents(spec), "bank")


def load_bank_yaml(text: str) -> list[ModelObject]:
    return load_text(text, "bank.yaml")


__all__ = [
    "BankSpec",
    "OPT_IN_LABEL",
    "EGRESS_LABEL_PREFIX",
    "DRY_RUN_POLICY",
    "service_name",
    "egress_label",
    "bank_egress",
    "bank_documents",
    "bank_objects",
    "bank_yaml",
    "dry_run_policy",
    "load_bank_yaml",
]
