"""Randomized: random labels, namespace labels and policies (Kubernetes and Calico) on the small lab; the
matrix measured with real packets must equal the oracle's for every pair and service probed. Each seed
also applies a second random round incrementally (relabels) and checks again."""

from __future__ import annotations

import random

import pytest
import yaml
from dataplane_lab import DataplaneLab, assert_matches_oracle

from policy_dataplane.policy.model import Labels, Namespace
from traffic.model import Protocol

pytestmark = pytest.mark.root
SERVICES = [(Protocol.TCP, 8080), (Protocol.TCP, 9005), (Protocol.UDP, 53), (Protocol.SCTP, 3868),
            (Protocol.ICMP, 0)]
APPS, ROLES, TEAMS = ("a", "b", "c"), ("fe", "be"), ("x", "y")
PORTS = [{"port": 8080}, {"port": 53, "protocol": "UDP"}, {"port": 9000, "endPort": 9010}, {"port": "http"},
         {"port": 3868, "protocol": "SCTP"}]
CIDRS = ["$h1_block", "$h2_block", "$uplinks", "$pool", "$ns0_p0/32"]  # filled in from the lab


def k8s_policy(rng: random.Random, i: int) -> dict:
    peers = []
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(["pod", "ns", "both", "ipblock"])
        if kind == "ipblock":
            cidr = rng.choice(CIDRS[:4])
            holds_p0 = cidr in (CIDRS[0], CIDRS[3])  # except must lie inside the cidr
            peers.append({"ipBlock": {"cidr": cidr, "except": [CIDRS[4]]} if holds_p0 else {"cidr": cidr}})
            continue
        peer: dict = {}
        if kind in ("pod", "both"):
            peer["podSelector"] = {"matchLabels": {"app": rng.choice(APPS)}}
        if kind in ("ns", "both"):
            peer["namespaceSelector"] = {"matchLabels": {"team": rng.choice(TEAMS)}} if rng.random() < 0.7 else {}
        peers.append(peer)
    rule: dict = {}
    if peers:
        rule["from" if i % 2 == 0 else "to"] = peers
    if rng.random() < 0.6:
        rule["ports"] = rng.sample(PORTS, rng.randint(1, 2))
    direction = "ingress" if i % 2 == 0 else "egress"
    spec: dict = {"podSelector": {"matchLabels": {"role": rng.choice(ROLES)}} if rng.random() < 0.8 else {},
                  "policyTypes": ["Ingress" if direction == "ingress" else "Egress"],
                  direction: [rule] if rng.random() < 0.9 else []}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"k{i}", "namespace": rng.choice(["ns0", "ns1"])}, "spec": spec}


def calico_rule(rng: random.Random) -> dict:
    rule: dict = {"action": rng.choice(["Allow", "Allow", "Deny", "Pass", "Log"])}
    protocol = rng.choice([None, "TCP", "UDP", "ICMP", "SCTP"])
    if protocol:
        rule["protocol"] = protocol
    if protocol in ("TCP", "UDP", "SCTP") and rng.random() < 0.6:
        key = rng.choice(["ports", "notPorts"])
        rule["destination"] = {key: rng.sample([8080, "9000:9010", 53, 3868], rng.randint(1, 2))}
    if protocol == "ICMP" and rng.random() < 0.5:
        rule["icmp" if rng.random() < 0.5 else "notICMP"] = {"type": 8}
    if rng.random() < 0.5:
        side = rule.setdefault("source", {})
        choice = rng.choice(["selector", "notSelector", "nets", "notNets"])
        side[choice] = f"app == '{rng.choice(APPS)}'" if "elector" in choice else [rng.choice(CIDRS)]
        if "elector" in choice:
            side["namespaceSelector"] = "all()"
    return rule


def calico_policy(rng: random.Random, i: int) -> dict:
    types = rng.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
    spec: dict = {"order": rng.choice([10, 100, 500]), "selector": rng.choice(
        [f"role == '{r}'" for r in ROLES] + [f"app in {{'{a}'}}" for a in APPS] + ["all()"]), "types": types}
    for t in types:
        spec[t.lower()] = [calico_rule(rng) for _ in range(rng.randint(0, 3))]
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": f"g{i}"},
            "spec": spec}


def relabel(lab: DataplaneLab, rng: random.Random) -> None:
    for ns, name in list(lab.world.pods):
        lab.world.label_pod(ns, name, app=rng.choice(APPS), role=rng.choice(ROLES))
    lab.world.apply([Namespace(ns, Labels({"team": rng.choice(TEAMS), "kubernetes.io/metadata.name": ns}))
                     for ns in ("ns0", "ns1")])


@pytest.mark.parametrize("seed", range(1, 9))
def test_random_worlds_match_the_oracle(lab: DataplaneLab, seed: int) -> None:
    rng = random.Random(seed)
    relabel(lab, rng)
    docs = [k8s_policy(rng, i) for i in range(rng.randint(1, 4))] + \
        [calico_policy(rng, i) for i in range(rng.randint(0, 3))]
    lab.apply(lab.fill(yaml.safe_dump_all(docs)))
    measured = assert_matches_oracle(lab, SERVICES)
    assert len(measured) > 100 and any(measured) and not all(measured)  # a world that both allows and denies
    relabel(lab, rng)  # the same policies, new labels everywhere: applied incrementally
    lab.sync()
    assert_matches_oracle(lab, SERVICES)
