"""What Monzo's egress-operator makes for an ExternalService, as documents the lab applies. Pure.

For `ExternalService <name>` (cluster-scoped): in `egress-operator-system` a gateway pod (a TCP proxy to the
external host; the lab runs it, see `services.daemon`), a ClusterIP Service in front of it, and a
NetworkPolicy that admits only pods labelled `egress.monzo.com/allowed-gateway: <name>` (the operator's
README) or `egress.monzo.com/allowed-<name>: "true"` (its code, one label per gateway), from any namespace.
The cluster DNS answers the dnsName with the Service's ClusterIP when `hijackDns` is true.

Every document made here carries the owner annotation, so deleting the ExternalService deletes them too.
"""

from __future__ import annotations

from typing import Any

from services.objects import ExternalService

NAMESPACE = "egress-operator-system"
ALLOWED_LABEL = "egress.monzo.com/allowed-gateway"
GATEWAY_LABEL = "egress.monzo.com/gateway"
OWNER_ANNOTATION = "netpol-lab.io/owner"
TARGET_ANNOTATION = "netpol-lab.io/egress-target"  # the dnsName the gateway proxies to


def allowed_label(name: str) -> str:
    """The per-gateway form the operator's code selects today (`egress.monzo.com/allowed-<name>: "true"`):
    unlike `allowed-gateway: <name>`, a pod can carry one for each gateway it uses."""
    return f"egress.monzo.com/allowed-{name}"


def owner(es: ExternalService) -> str:
    return f"ExternalService/{es.name}"


def _meta(es: ExternalService, **extra: Any) -> dict[str, Any]:
    return {"name": es.name, "namespace": NAMESPACE, "labels": {"app": "egress-gateway", GATEWAY_LABEL: es.name},
            "annotations": {OWNER_ANNOTATION: owner(es)}, **extra}


def port_name(port: int) -> str:
    return f"tcp-{port}"


def namespace_document() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"kubernetes.io/metadata.name": NAMESPACE}}}


def gateway_documents(es: ExternalService) -> list[dict[str, Any]]:
    """The gateway's Pod, Service and NetworkPolicy."""
    ports = [{"name": port_name(p), "containerPort": p, "protocol": proto} for p, proto in es.ports]
    pod_meta = _meta(es)
    pod_meta["annotations"] = {**pod_meta["annotations"], TARGET_ANNOTATION: es.dns_name}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
           "spec": {"containers": [{"name": "gateway", "image": "netpol-lab/egress-gateway", "ports": ports}]}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(es),
               "spec": {"selector": {GATEWAY_LABEL: es.name},
                        "ports": [{"name": port_name(p), "protocol": proto, "port": p, "targetPort": p}
                                  for p, proto in es.ports]}}
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(es),
              "spec": {"podSelector": {"matchLabels": {GATEWAY_LABEL: es.name}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"namespaceSelector": {},
                                              "podSelector": {"matchLabels": {ALLOWED_LABEL: es.name}}},
                                             {"namespaceSelector": {},
                                              "podSelector": {"matchLabels": {allowed_label(es.name): "true"}}}],
                                    "ports": [{"protocol": proto, "port": p} for p, proto in es.ports]}]}}
    return [pod, service, policy]


def is_gateway_pod(namespace: str, labels: dict[str, str]) -> bool:
    return namespace == NAMESPACE and GATEWAY_LABEL in labels
