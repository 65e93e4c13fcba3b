"""What `lab status` and the summary after `lab up` show, as plain data (the --json form)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lab.addresses import ipam_of
from lab.objects import pod_ports
from lab.plan import plan_node_addresses_from_model
from lab.runtime import LabRuntime


def lab_status(runtime: LabRuntime) -> dict[str, Any]:
    spec = runtime.spec
    ipam = ipam_of(runtime)
    docs = {f"{k.namespace}/{k.name}": d for k, d in runtime.pod_documents()}
    pods_by_host: dict[str, int] = defaultdict(int)
    pods = []
    for p in runtime.store.placements():
        doc = docs.get(f"{p.namespace}/{p.name}", {})
        pods_by_host[p.host] += 1
        pods.append({
            "namespace": p.namespace, "name": p.name, "host": p.host, "ip": p.ip,
            "labels": doc.get("metadata", {}).get("labels", {}),
            "ports": [f"{port}/{proto}" + (f" ({name})" if name else "") for port, proto, name in pod_ports(doc)],
        })
    nodes = []
    machine_of, first_machine = spec.machine_of(), spec.machine_names()[0]
    for node in plan_node_addresses_from_model(runtime.lab, spec):
        entry: dict[str, Any] = {"name": node.name, "kind": node.kind, "fabric_ip": str(node.ip),
                                 "machine": machine_of.get(node.name, first_machine)}
        if node.kind == "host":
            entry["pods"] = pods_by_host.get(node.name, 0)
            entry["blocks"] = sorted(str(b) for b in ipam.blocks_of(node.name))
        nodes.append(entry)
    return {
        "lab": runtime.lab,
        "status": runtime.store.get_meta("status"),
        "revision": runtime.store.revision,
        "pool": str(spec.ipam.pool),
        "bgp": spec.bgp.layout,
        "dataplane": spec.dataplane,
        "engine": spec.engine,
        "store": spec.store.backend,
        "machine": runtime.machine,
        "nodes": nodes,
        "pods": pods,
    }
