"""Service and ExternalService validation: every problem named by file, object and field, nothing loaded."""

from __future__ import annotations

import pytest

from policy_dataplane.policy.documents import DocumentsInvalid, load_text
from services.objects import external_service_from_doc, service_from_doc

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dev}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9090, targetPort: 9090, protocol: UDP}]
"""


def test_a_valid_service_loads_as_no_policy_object() -> None:
    assert load_text(SERVICE, "svc.yaml") == []


def test_service_fields() -> None:
    import yaml

    svc = service_from_doc(yaml.safe_load(SERVICE))
    assert svc.key == "dev/web" and svc.selector == (("app", "web"),) and svc.cluster_ip is None
    assert [(p.port, p.protocol, p.target) for p in svc.ports] == [(80, "TCP", "http"), (9090, "UDP", 9090)]
    assert svc.port(9090, "udp") is svc.ports[1] and svc.port(9090, "tcp") is None


@pytest.mark.parametrize("change, field, message", [
    (("name: web,", "name: Web_1,"), "metadata.name", "DNS label"),
    (("port: 80,", "port: 0,"), "spec.ports[0].port", "between 1 and 65535"),
    (("targetPort: http}", "targetPort: not_a-name}"), "spec.ports[0].targetPort", "port name"),
    (("targetPort: 9090,", "targetPort: 70000,"), "spec.ports[1].targetPort", "between 1 and 65535"),
    (("{name: metrics, ", "{"), "spec.ports[1].name", "needs a name"),
    (("selector: {app: web}", "selector: {app: 'bad value!'}"), "spec.selector.app", "label value"),
    (("selector: {app: web}", "type: NodePort"), "spec.type", ""),
    (("selector: {app: web}", "clusterIP: 10.96.0.300"), "spec.clusterIP", "not an IPv4 address"),
    (("selector: {app: web}", "clusterIP: None"), "spec.clusterIP", "headless"),
    (("selector: {app: web}", "externalName: evil.com"), "spec.externalName", "unknown field"),
])
def test_service_problems_name_file_object_and_field(change: tuple[str, str], field: str, message: str) -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text(SERVICE.replace(*change), "svc.yaml")
    problem = err.value.problems[0]
    assert (problem.source, problem.field) == ("svc.yaml#1", field)
    assert "Service dev/" in problem.object and message in problem.message


def test_duplicate_service_ports_are_refused() -> None:
    text = SERVICE.replace("port: 9090, targetPort: 9090, protocol: UDP", "port: 80, targetPort: 9090")
    with pytest.raises(DocumentsInvalid, match=r"spec.ports\[1\].port: duplicate port 80/TCP"):
        load_text(text, "svc.yaml")


EXTERNAL = """
apiVersion: egress.monzo.com/v1
kind: ExternalService
metadata: {name: github}
spec: {dnsName: api.github.com, hijackDns: true, ports: [{port: 443}]}
"""


def test_external_service() -> None:
    import yaml

    es = external_service_from_doc(yaml.safe_load(EXTERNAL))
    assert (es.name, es.dns_name, es.hijack_dns, es.ports) == ("github", "api.github.com", True, ((443, "TCP"),))
    assert load_text(EXTERNAL, "es.yaml") == []


@pytest.mark.parametrize("change, field", [
    (("dnsName: api.github.com", "dnsName: 'api.github.com;rm -rf'"), "spec.dnsName"),
    (("dnsName: api.github.com", "dnsName: github"), "spec.dnsName"),
    (("{name: github}", "{name: github, namespace: dev}"), "metadata.namespace"),
    (("port: 443", "port: 443, protocol: UDP"), "spec.ports.0.protocol"),
    (("hijackDns: true", "hijackDns: true, bogus: 1"), "spec.bogus"),
])
def test_external_service_problems(change: tuple[str, str], field: str) -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text(EXTERNAL.replace(*change), "es.yaml")
    assert err.value.problems[0].field.replace("[0]", ".0") == field.replace("[0]", ".0")
