"""A preDNAT deny of traffic to a real Service from an external server, with real probes, on both dataplanes.

The node-firewall lab (host endpoints on both hosts' fabric interfaces) gets a ClusterIP Service in front of
dev/web (port 8000 -> 80). The external server reaches the ClusterIP through node1, where the Service's
DNAT (prerouting, -100) turns it into dev/web:80. A preDNAT policy hooks prerouting before that DNAT
(-150), so it can name the ClusterIP and the Service port, which no normal policy ever sees: it stops the
external server at the ClusterIP while dev/web stays reachable from the external server directly, and a pod
on the other host still reaches the Service (its flow is translated on its own host, and arrives at node1
already addressed to the pod).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from lab.apply import apply_files, apply_sources, key_for
from lab.cli import app, register_commands
from lab.runtime import LabRuntime
from lab.service_targets import find_target
from lab.traffic_hooks import expected_verdicts, probe_endpoints
from tests.integration.lab.node_firewall import FILES, node_firewall_lab
from tests.integration.lab.reach import tcp_outcomes
from topology import names
from topology.netns import run_in as run_in_netns
from traffic.model import Probe, Protocol, find_endpoint
from traffic.probes import run_probes

pytestmark = pytest.mark.root
register_commands()
NODE1, TASKS = "10.99.0.1", "10.99.0.200"
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web, namespace: dev}
spec: {selector: {app: web}, ports: [{name: http, port: 8000, targetPort: 80}]}
"""
EDGE = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: edge-service}
spec:
  selector: role == 'node'
  preDNAT: true
  applyOnForward: true
  order: 10
  ingress:
    - {action: Deny, protocol: TCP, source: {nets: [%s/32]}, destination: {nets: [%s/32], ports: [8000]}}
"""


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def svc_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The node-firewall lab on one dataplane with its host endpoints and the dev/web Service."""
    base = tmp_path_factory.mktemp(f"pdn-{request.param}")
    with node_firewall_lab(f"itpdn{request.param[:3]}", request.param, base) as lab:
        with LabRuntime.open(lab) as runtime:
            apply_files(runtime, [FILES / "1-host-endpoints.yaml"])
            apply_sources(runtime, [("svc.yaml", SERVICE)])
        yield lab


def cluster_ip(lab: str) -> str:
    with LabRuntime.open(lab) as runtime:
        return str(runtime.store.get_object(key_for("svc", "dev/web"))["spec"]["clusterIP"])


def probe(lab: str, src: str, dst: str, port: int, count: int = 4) -> tuple[int, bool]:
    """(delivered probes, the oracle's verdict) from src to dst (an endpoint or svc/NS/NAME)."""
    endpoints = probe_endpoints(lab)
    source, target = find_endpoint(endpoints, src), find_target(lab, endpoints, dst)
    results = run_probes([Probe(source, target, Protocol.TCP, port)] * count)
    return sum(r.delivered for r in results), expected_verdicts(lab, [(source, target)], "tcp", port)[0]


def explain(lab: str, src: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, ["explain", src, "svc/dev/web", "--port", "8000", "--lab", lab, "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_pre_dnat_deny_of_a_service_from_an_external_server(svc_lab: str) -> None:
    ip = cluster_ip(svc_lab)
    tasks = names.external_netns(svc_lab, "tasks")
    # The ClusterIP is reached through node1, as a cluster's edge router would send it (Calico advertises
    # ClusterIPs over BGP; the lab does not): a route in the external server's own namespace.
    run_in_netns(tasks, ["ip", "route", "replace", f"{ip}/32", "via", NODE1])
    assert tcp_outcomes(tasks, [(ip, 8000)], timeout=2) == {(ip, 8000): "accepted"}
    assert probe(svc_lab, "tasks", "svc/dev/web", 8000) == (4, True)
    assert probe(svc_lab, "dev/client", "svc/dev/web", 8000) == (4, True)
    assert explain(svc_lab, "dev/client")["allowed"] is True
    assert explain(svc_lab, "tasks")["allowed"] is True

    with LabRuntime.open(svc_lab) as runtime:
        apply_sources(runtime, [("edge.yaml", EDGE % (TASKS, ip))])
    # the external server is stopped at the ClusterIP, by the real packets and by the oracle
    assert tcp_outcomes(tasks, [(ip, 8000)], timeout=2) == {(ip, 8000): "no answer"}
    assert probe(svc_lab, "tasks", "svc/dev/web", 8000) == (0, False)
    denied = explain(svc_lab, "tasks")
    assert denied["allowed"] is False and denied["cluster_ip"] == ip
    # the pod behind it still answers the external server directly: only the Service's address was denied
    web = next(e for e in probe_endpoints(svc_lab) if e.name == "dev/web")
    assert tcp_outcomes(tasks, [(str(web.ip), 80)], timeout=2) == {(str(web.ip), 80): "accepted"}
    assert probe(svc_lab, "tasks", "dev/web", 80) == (4, True)
    # a pod on the other host still reaches the Service: translated on node2, it reaches node1 as dev/web:80
    assert probe(svc_lab, "dev/client", "svc/dev/web", 8000) == (4, True)
    assert explain(svc_lab, "dev/client")["allowed"] is True
