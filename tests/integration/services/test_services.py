"""Services, cluster DNS and ExternalServices in a real lab: DNAT in the hosts, policy on the backend, real
DNS queries from pods through the kube-dns Service, and a gateway that proxies to an external host."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab import pipeline
from lab.apply import ApplyError, apply_sources, delete_keys, key_for, label
from lab.cli import app, register_commands
from lab.labfile import parse_lab
from lab.lookup import lookup
from lab.runtime import LabRuntime, expected_verdicts, probe_endpoints
from lab.service_targets import find_target
from lab.services import lab_resolv_dirs
from tests.integration.lab.reach import tcp_outcomes
from topology import names
from traffic.measure import measure_matrix
from traffic.model import Probe, Protocol, find_endpoint
from traffic.probes import ProbeEngine, run_probes

pytestmark = pytest.mark.root
register_commands()

LAB = {
    "name": "svc",
    "hosts": 2,
    "bgp": {"holdTime": 3},
    "clusterDNS": {"replicas": 1, "host": "node2"},
    "namespaces": [{"name": "shop", "labels": {"team": "shop"}}, {"name": "tools"}],
    "pods": [
        {"name": "frontend", "namespace": "shop", "host": "node1", "labels": {"app": "frontend"},
         "ports": [{"name": "http", "containerPort": 80}]},
        {"name": "backend", "namespace": "shop", "replicas": 2, "labels": {"app": "backend"},
         "ports": [{"name": "api", "containerPort": 8080}]},
        {"name": "monitor", "namespace": "tools", "host": "node2", "labels": {"app": "monitor"}},
    ],
    "externals": [{"name": "registry", "dnsNames": ["registry.example.com"], "ip": "10.99.0.200",
                   "ports": [{"name": "https", "containerPort": 443}]}],
}

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: shop}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: api}]
"""

ONLY_FRONTEND = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend-from-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress: [{from: [{podSelector: {matchLabels: {app: frontend}}}], ports: [{port: api}]}]
"""

DENY_EGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: shop}
spec: {podSelector: {}, policyTypes: [Egress]}
"""

ALLOW_DNS = (Path(__file__).parents[3] / "lab" / "scenarios" / "recipes" / "5-allow-dns.yaml").read_text()

EXTERNAL_SERVICE = """
apiVersion: egress.monzo.com/v1
kind: ExternalService
metadata: {name: registry}
spec: {dnsName: registry.example.com, hijackDns: true, ports: [{port: 443}]}
"""

EGRESS_TO_GATEWAYS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-to-gateways, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: egress-operator-system}}}]}]
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRuntime]:
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("svc-lab")
    mp.setenv(names.STATE_ROOT_ENV, str(root / "state"))
    mp.setenv(names.RUN_ROOT_ENV, str(root / "run"))
    spec = parse_lab(LAB, "<services test>", root)
    try:
        pipeline.up(spec, timeout=60)
        rt = LabRuntime.open(spec.name)
        yield rt
        rt.close()
    finally:
        pipeline.down(spec.name, force=True)
        assert not list(lab_resolv_dirs(spec.name)), "lab down leaves no /etc/netns folder behind"
        mp.undo()


def probe(lab: str, src: str, dst: str, port: int, count: int = 6) -> tuple[int, bool]:
    """(delivered probes, what the oracle expects) from src to dst (a pod or svc/NS/NAME)."""
    endpoints = probe_endpoints(lab)
    source, target = find_endpoint(endpoints, src), find_target(lab, endpoints, dst)
    results = run_probes([Probe(source, target, Protocol.TCP, port)] * count)
    return sum(r.delivered for r in results), expected_verdicts(lab, [(source, target)], "tcp", port)[0]


def curl(runtime: LabRuntime, pod: str, url: str) -> str | None:
    netns = names.pod_netns(runtime.lab, *pod.split("/"))
    out = subprocess.run(["ip", "netns", "exec", netns, "curl", "-s", "-m", "2", url], capture_output=True,
                         text=True, env={"RES_OPTIONS": "timeout:1 attempts:1", "PATH": "/usr/bin:/bin"})
    return out.stdout.strip() if out.returncode == 0 else None


def dns_over_tcp(runtime: LabRuntime, pod: str, name: str) -> list[str]:
    """A query over TCP to the kube-dns ClusterIP, sent from inside the pod."""
    from dnslib import DNSRecord

    from topology import netns

    server = runtime.store.get_object(key_for("svc", "kube-system/kube-dns"))["spec"]["clusterIP"]
    with netns.entered(names.pod_netns(runtime.lab, *pod.split("/"))):
        reply = DNSRecord.parse(DNSRecord.question(name).send(server, 53, tcp=True, timeout=3))
    return [str(rr.rdata) for rr in reply.rr]


def test_service_dnat_spreads_over_backends_and_honours_policy(runtime: LabRuntime) -> None:
    lab = runtime.lab
    apply_sources(runtime, [("svc.yaml", SERVICE)])
    stored = runtime.store.get_object(key_for("svc", "shop/backend"))
    assert stored is not None and stored["spec"]["clusterIP"].startswith("10.96.")
    # the backends answer HTTP with their own name: both are reached through the one ClusterIP
    answers = {curl(runtime, "shop/frontend", f"http://{stored['spec']['clusterIP']}/") for _ in range(16)}
    assert answers == {"shop/backend-0", "shop/backend-1"}
    assert probe(lab, "tools/monitor", "svc/shop/backend", 80) == (6, True)
    apply_sources(runtime, [("policy.yaml", ONLY_FRONTEND)])
    # policy sees the backend pod (DNAT came first): the frontend passes, the monitor does not
    assert probe(lab, "shop/frontend", "svc/shop/backend", 80) == (6, True)
    assert probe(lab, "tools/monitor", "svc/shop/backend", 80) == (0, False)
    # the matrix towards the Service, every pod as a source, agrees with the oracle
    endpoints = probe_endpoints(lab)
    with ProbeEngine() as engine:
        report = measure_matrix(engine, endpoints, lambda pairs, proto, p: expected_verdicts(lab, pairs, proto, p),
                                Protocol.TCP, 80, groups={"shop", "tools"}, full=True,
                                destinations=[find_target(lab, endpoints, "svc/shop/backend")])
    assert len(report.records) == 4 and not report.mismatches
    assert sorted((r.src, r.measured) for r in report.records) == [
        ("shop/backend-0", "deny"), ("shop/backend-1", "deny"), ("shop/frontend", "allow"), ("tools/monitor", "deny")]
    # explain names the ClusterIP, each backend and the policy decision for it
    result = CliRunner().invoke(app, ["explain", "tools/monitor", "svc/shop/backend", "--port", "80", "--lab", lab,
                                      "--json"])
    assert result.exit_code == 0, result.output
    explained = json.loads(result.output)
    assert explained["cluster_ip"] == stored["spec"]["clusterIP"] and explained["allowed"] is False
    assert sorted((b["backend"], b["port"]) for b in explained["backends"]) == [("shop/backend-0", 8080),
                                                                             ("shop/backend-1", 8080)]
    # a port the Service does not have is rejected by the host, not passed on to the ClusterIP
    outcome = tcp_outcomes(names.pod_netns(lab, "shop", "frontend"), [(stored["spec"]["clusterIP"], 81)], 2)
    assert list(outcome.values()) == ["refused"]
    # re-applying keeps the ClusterIP; a taken one is refused and nothing changes
    apply_sources(runtime, [("svc.yaml", SERVICE)])
    assert runtime.store.get_object(key_for("svc", "shop/backend"))["spec"]["clusterIP"] == stored["spec"]["clusterIP"]
    clash = SERVICE.replace("name: backend,", "name: other,").replace("spec:", f"spec:\n  clusterIP: {stored['spec']['clusterIP']}")
    with pytest.raises(ApplyError, match="already the ClusterIP of Service shop/backend"):
        apply_sources(runtime, [("clash.yaml", clash)])
    assert runtime.store.get_object(key_for("svc", "shop/other")) is None
    delete_keys(runtime, [key_for("netpol", "shop/backend-from-frontend")])


def test_lookups_work_fail_under_denied_dns_egress_and_work_again(runtime: LabRuntime) -> None:
    apply_sources(runtime, [("svc.yaml", SERVICE)])
    ip = runtime.store.get_object(key_for("svc", "shop/backend"))["spec"]["clusterIP"]
    assert lookup(runtime, "shop/frontend", "backend").addresses == (ip,)  # the search path: shop.svc.cluster.local
    assert lookup(runtime, "tools/monitor", "backend.shop").addresses == (ip,)
    assert lookup(runtime, "shop/frontend", "registry").addresses == ("10.99.0.200",)
    assert not lookup(runtime, "shop/frontend", "nothing.shop.svc.cluster.local.").resolved
    assert dns_over_tcp(runtime, "shop/frontend", "backend.shop.svc.cluster.local") == [ip]
    assert curl(runtime, "shop/frontend", "http://backend/") in ("shop/backend-0", "shop/backend-1")
    apply_sources(runtime, [("deny.yaml", DENY_EGRESS)])
    assert not lookup(runtime, "shop/frontend", "backend.shop.svc.cluster.local.").resolved
    assert lookup(runtime, "tools/monitor", "backend.shop").addresses == (ip,)  # another namespace: untouched
    apply_sources(runtime, [("allow-dns.yaml", ALLOW_DNS)])
    assert lookup(runtime, "shop/frontend", "backend.shop.svc.cluster.local.").addresses == (ip,)
    assert curl(runtime, "shop/frontend", "http://backend/") is None  # DNS only: the call itself is denied
    delete_keys(runtime, [key_for("netpol", "shop/deny-egress"), key_for("netpol", "shop/allow-dns")])


def test_external_service_by_label_and_name_only(runtime: LabRuntime) -> None:
    apply_sources(runtime, [("es.yaml", EXTERNAL_SERVICE), ("egress.yaml", EGRESS_TO_GATEWAYS),
                            ("allow-dns.yaml", ALLOW_DNS)])
    gateway = runtime.store.get_object(key_for("svc", "egress-operator-system/registry"))
    assert gateway is not None
    assert lookup(runtime, "shop/frontend", "registry.example.com").addresses == (gateway["spec"]["clusterIP"],)
    assert curl(runtime, "shop/frontend", "http://registry.example.com:443/") is None  # no label: denied
    label(runtime, key_for("pod", "shop/frontend"), {"egress.monzo.com/allowed-gateway": "registry"})
    assert curl(runtime, "shop/frontend", "http://registry.example.com:443/") == "registry"  # by name, via gateway
    assert curl(runtime, "shop/backend-0", "http://registry.example.com:443/") is None  # no label
    assert curl(runtime, "shop/frontend", "http://10.99.0.200:443/") is None  # the address directly: denied
    # deleting the ExternalService takes its gateway, Service, policy and DNS answer with it
    delete_keys(runtime, [key_for("externalservice", "registry")])
    assert runtime.store.get_object(key_for("svc", "egress-operator-system/registry")) is None
    assert runtime.store.get_object(key_for("pod", "egress-operator-system/registry")) is None
    assert lookup(runtime, "shop/frontend", "registry.example.com").addresses == ("10.99.0.200",)


def test_external_service_for_an_unknown_host_is_refused_whole(runtime: LabRuntime) -> None:
    before = runtime.store.revision
    with pytest.raises(ApplyError, match=r"bad\.yaml: ExternalService github: spec\.dnsName: 'api\.github\.com'"):
        apply_sources(runtime, [("bad.yaml", EXTERNAL_SERVICE.replace("registry.example.com", "api.github.com")
                                 .replace("name: registry", "name: github"))])
    assert runtime.store.revision == before
