"""The cluster DNS's answers, names and resolv.conf; the egress-operator's objects under the oracle."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from policy_dataplane.policy.documents import load_documents, load_text
from policy_dataplane.policy.evaluate import verdict
from policy_dataplane.policy.world import World
from services import dns, egress
from services.objects import ExternalService

RECORDS = {"web.dev.svc.cluster.local": "10.96.0.20", "api.github.com": "10.96.0.30"}


def ask(name: str, qtype: str = "A") -> DNSRecord:
    return DNSRecord.parse(dns.answer(DNSRecord.question(name, qtype).pack(), RECORDS))


def test_known_names_get_their_address_unknown_ones_nxdomain() -> None:
    reply = ask("web.dev.svc.cluster.local")
    assert [str(rr.rdata) for rr in reply.rr] == ["10.96.0.20"] and reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in ask("API.GitHub.com.").rr] == ["10.96.0.30"]  # case and trailing dot
    assert ask("web.prod.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    aaaa = ask("web.dev.svc.cluster.local", "AAAA")  # a known name without IPv6: empty, not an error
    assert aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr
    assert ask("example.org").header.rcode == RCODE.NXDOMAIN  # never forwarded outside the lab
    assert QTYPE.A == 1


def test_junk_gets_formerr_or_nothing() -> None:
    reply = DNSRecord.parse(dns.answer(b"\x12\x34garbage", RECORDS))
    assert reply.header.id == 0x1234 and reply.header.rcode == RCODE.FORMERR
    assert dns.answer(b"\x01", RECORDS) == b""


@pytest.mark.parametrize("bad", ["a b.com", "evil.com\nnameserver 1.2.3.4", "-x.com", "a..b", "x" * 64 + ".com"])
def test_names_that_are_not_dns_names_never_become_records_or_config(bad: str) -> None:
    with pytest.raises(dns.BadName):
        dns.checked_name(bad)


def test_resolv_conf_has_kubernetes_search_path() -> None:
    text = dns.resolv_conf("shop", IPv4Address("10.96.0.10"))
    assert text == ("search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\n"
                    "options ndots:5\n")


def test_gateway_objects_are_valid_and_admit_only_labelled_pods() -> None:
    es = ExternalService("github", "api.github.com", True, ((443, "TCP"),))
    docs = [egress.namespace_document(), *egress.gateway_documents(es)]
    pods = load_text("""
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {kubernetes.io/metadata.name: dev}}
---
apiVersion: v1
kind: Pod
metadata: {name: allowed, namespace: dev, labels: {egress.monzo.com/allowed-gateway: github},
           annotations: {cni.projectcalico.org/ipAddrs: '["10.0.0.1"]'}}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: dev, labels: {egress.monzo.com/allowed-gateway: slack},
           annotations: {cni.projectcalico.org/ipAddrs: '["10.0.0.2"]'}}
spec: {containers: [{name: c}]}
""")
    gateway_pod = {**docs[1], "metadata": {**docs[1]["metadata"],
                                           "annotations": {"cni.projectcalico.org/ipAddrs": '["10.0.0.9"]'}}}
    world = World.from_objects([*pods, *load_documents([docs[0], gateway_pod, docs[3]])])
    assert load_documents([docs[2]]) == []  # the Service validates (and is no policy object)
    gw = "egress-operator-system/github"
    assert verdict(world, "dev/allowed", gw, "TCP", 443).allowed
    assert not verdict(world, "dev/other", gw, "TCP", 443).allowed
    assert not verdict(world, "dev/allowed", gw, "TCP", 80).allowed
    assert all(d["metadata"]["annotations"][egress.OWNER_ANNOTATION] == "ExternalService/github" for d in docs[1:])
