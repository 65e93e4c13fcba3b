"""The lab file's namespaces and pods as the Kubernetes documents the store keeps and policy reads.

Keeping pods as real `v1` Pod documents means `lab apply -f pod.yaml` and the lab file feed one path, and
the policy model reads them exactly as it reads a user's YAML.
"""

from __future__ import annotations

import json
from typing import Any

from lab.labfile import NamespaceSpec, PodSpec, PortSpec
from topology.docker_images import DEFAULT_IMAGE
from topology.model import ContainerPlan

IP_ANNOTATION = "cni.projectcalico.org/ipAddrs"
RUNTIME_ANNOTATION = "netpol-lab.io/runtime"  # "docker": the pod runs as a container of its image
RESPONDER_IMAGE = "netpol-lab/responder"  # a netns pod: the lab's responder answers its ports


def namespace_document(ns: NamespaceSpec) -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": ns.name, **ns.labels}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns.name, "labels": labels}}


def _ports(ports: list[PortSpec]) -> list[dict[str, Any]]:
    out = []
    for p in ports:
        port: dict[str, Any] = {"containerPort": p.containerPort, "protocol": p.protocol}
        if p.name:
            port["name"] = p.name
        out.append(port)
    return out


def pod_document(spec: PodSpec, name: str, host: str | None, runtime: str = "netns",
                 image: str | None = None) -> dict[str, Any]:
    """`runtime` and `image` as the lab file resolves them for this pod (LabSpec.pod_runtime/pod_image)."""
    metadata: dict[str, Any] = {"name": name, "namespace": spec.namespace, "labels": dict(spec.labels)}
    annotations = {}
    if spec.ip is not None:
        annotations[IP_ANNOTATION] = f'["{spec.ip}"]'
    container: dict[str, Any] = {"name": "main", "image": RESPONDER_IMAGE, "ports": _ports(spec.ports)}
    if runtime == "docker":
        annotations[RUNTIME_ANNOTATION] = "docker"
        container["image"] = image or DEFAULT_IMAGE
        if spec.command is not None:
            container["command"] = list(spec.command)
    if annotations:
        metadata["annotations"] = annotations
    pod_spec: dict[str, Any] = {"serviceAccountName": spec.serviceAccountName, "containers": [container]}
    if host is not None:
        pod_spec["nodeName"] = host
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def pod_ports(doc: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    """(port, protocol, name) of every container port of a Pod document."""
    out = []
    for container in doc.get("spec", {}).get("containers", []) or []:
        for p in container.get("ports", []) or []:
            out.append((int(p["containerPort"]), p.get("protocol", "TCP"), p.get("name")))
    return out


def pod_container(doc: dict[str, Any]) -> ContainerPlan | None:
    """How a Pod document runs: None for a netns pod, else its image and command. The responder answers
    the ports of a container that idles in the default image; any other container serves its own."""
    if (doc.get("metadata", {}).get("annotations") or {}).get(RUNTIME_ANNOTATION) != "docker":
        return None
    main = (doc.get("spec", {}).get("containers") or [{}])[0]
    image = main.get("image") or DEFAULT_IMAGE
    command = tuple(main["command"]) if main.get("command") is not None else None
    return ContainerPlan(image=image, command=command, responder=image == DEFAULT_IMAGE and command is None)


def fixed_ip(doc: dict[str, Any]) -> str | None:
    """The one address asked for by Calico's ipAddrs annotation, if any."""

    raw = (doc.get("metadata", {}).get("annotations") or {}).get(IP_ANNOTATION)
    if not raw:
        return None
    ips = json.loads(raw)
    return ips[0] if ips else None


def kube_dns_service_document(cluster_ip: str) -> dict[str, Any]:
    """The kube-dns Service in front of the DNS pods, at the address kubeadm gives it (range + 10)."""
    from services.dns import DNS_LABELS, DNS_NAMESPACE, DNS_PORT, DNS_SERVICE

    ports = [{"name": "dns", "protocol": "UDP", "port": DNS_PORT, "targetPort": DNS_PORT},
             {"name": "dns-tcp", "protocol": "TCP", "port": DNS_PORT, "targetPort": DNS_PORT}]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": DNS_SERVICE, "namespace": DNS_NAMESPACE, "labels": dict(DNS_LABELS)},
            "spec": {"selector": dict(DNS_LABELS), "clusterIP": cluster_ip, "ports": ports}}
