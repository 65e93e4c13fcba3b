"""The lab file's service range, cluster DNS and external dnsName."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.labfile import LabFileError, parse_lab


def lab(**extra: object) -> dict[str, object]:
    return {"name": "t", "hosts": 2, "namespaces": [{"name": "dev"}],
            "externals": [{"name": "gh", "dnsNames": ["api.github.com"], "ip": "10.99.0.200"}], **extra}


def test_defaults_and_cluster_dns_pods() -> None:
    spec = parse_lab(lab(clusterDNS={"replicas": 2, "host": "node2"}), "t.yaml", Path("."))
    assert str(spec.model.serviceCIDR) == "10.96.0.0/12"  # the fabric 10.99.0.0/24 inside it is fine
    dns = [(p.namespace, name, dict(p.labels), p.host) for p, name in spec.pod_instances()]
    assert dns == [("kube-system", "coredns-0", {"k8s-app": "kube-dns"}, "node2"),
                   ("kube-system", "coredns-1", {"k8s-app": "kube-dns"}, "node2")]
    assert parse_lab(lab(), "t.yaml", Path(".")).pod_instances() == []


@pytest.mark.parametrize("extra, problem", [
    ({"serviceCIDR": "192.160.0.0/11"}, "lab: field serviceCIDR: 192.160.0.0/11 overlaps the pod pool"),
    ({"serviceCIDR": "10.96.0.1/12"}, "field serviceCIDR"),
    ({"clusterDNS": {"host": "node9"}}, "lab: field clusterDNS.host: no host named 'node9'"),
    ({"externals": [{"name": "gh", "dnsNames": ["api github.com"]}]}, "external gh: field dnsNames[0]"),
])
def test_problems(extra: dict[str, object], problem: str) -> None:
    with pytest.raises(LabFileError) as err:
        parse_lab(lab(**extra), "t.yaml", Path("."))
    assert any(problem in p for p in err.value.problems), err.value.problems
