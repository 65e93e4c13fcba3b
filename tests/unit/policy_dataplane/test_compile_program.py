"""compile_host: the world + local pods -> HostProgram (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from policy_dataplane.dataplane.compile import compile_host, compile_hosts
from policy_dataplane.dataplane.hostprogram import Dir, Verdict
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import ContainerPort, Labels, Namespace, Pod
from policy_dataplane.policy.world import World

DOCS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: a}
spec:
  podSelector: {matchLabels: {role: web}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.9.0.0/16]}}]
    ports: [{port: http}, {port: 9000, endPort: 9010}]
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: sec}
spec: {order: 10, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: sec.v6-and-pass}
spec:
  tier: sec
  selector: all()
  types: [Egress]
  egress:
  - {action: Deny, ipVersion: 6, protocol: ICMPv6}
  - {action: Pass, destination: {selector: role == "db"}}
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: staged-deny}
spec:
  selector: all()
  ingress: [{action: Deny}]
"""


def world() -> World:
    w = World()
    w.apply([Namespace("a", Labels({}))])
    w.apply(load_text(DOCS))
    w.apply([
        Pod("a", "web1", Labels({"role": "web"}), (IPv4Address("10.1.0.1"),), (ContainerPort("http", 8080, 6),)),
        Pod("a", "web2", Labels({"role": "web"}), (IPv4Address("10.1.0.2"),), (ContainerPort("http", 8081, 6),)),
        Pod("a", "db", Labels({"role": "db"}), (IPv4Address("10.1.0.3"),)),
    ])
    return w


def test_only_what_local_endpoints_need() -> None:
    w = world()
    programs = compile_hosts(w, {"h1": {("a", "web1"): "cali1"}, "h2": {("a", "db"): "cali3"}})
    web_host, db_host = programs["h1"], programs["h2"]
    assert {p.name for p in web_host.policies.values()} == {"a/knp.default.web", "sec.v6-and-pass"}
    assert {p.name for p in db_host.policies.values()} == {"sec.v6-and-pass"}  # the web policy is not there
    assert db_host.endpoints["cali3"].ingress == ()  # nothing selects db for ingress: it allows
    assert "staged-deny" not in {p.name for p in web_host.policies.values()}  # staged: never enforced
    web_host.check()


def test_rules_become_sets_ports_and_verdicts() -> None:
    w = world()
    program = compile_host(w, {("a", "web1"): "cali1", ("a", "web2"): "cali2"})
    web = next(p for p in program.policies.values() if p.name == "a/knp.default.web")
    assert web.direction is Dir.INGRESS
    rules = web.rules
    assert all(r.verdict is Verdict.ALLOW and r.protocol == 6 for r in rules)
    source = rules[0].source
    assert program.address_sets[source.nets or ""] == frozenset({IPv4Network("10.0.0.0/8")})
    assert program.address_sets[source.not_nets or ""] == frozenset({IPv4Network("10.9.0.0/16")})
    ports = {r.destination.ports for r in rules} | {(r.destination.named_ports,) for r in rules}
    assert ((9000, 9010),) in ports
    named = next(r.destination.named_ports for r in rules if r.destination.named_ports)
    # the named port resolves per pod: only this host's pods (the destination is the local endpoint)
    assert program.named_port_sets[named] == frozenset({(IPv4Address("10.1.0.1"), 6, 8080),
                                                        (IPv4Address("10.1.0.2"), 6, 8081)})
    sec = next(p for p in program.policies.values() if p.name == "sec.v6-and-pass")
    assert sec.rules[0].never and sec.rules[1].verdict is Verdict.PASS
    assert program.address_sets[sec.rules[1].destination.members or ""] == frozenset({IPv4Network("10.1.0.3/32")})
    tiers = program.endpoints["cali1"].egress
    assert [(t.name, t.default_pass) for t in tiers] == [("sec", True)]


def test_unknown_pods_get_no_endpoint() -> None:
    program = compile_host(world(), {("a", "gone"): "cali9"})
    assert program.endpoints == {} and program.policies == {}
