"""The synthetic bank: its figures, its YAML form, and what its policies say."""

from __future__ import annotations

import statistics

from policy_dataplane.policy.bankgen import (
    DRY_RUN_POLICY,
    OPT_IN_LABEL,
    BankSpec,
    bank_egress,
    bank_objects,
    bank_yaml,
    egress_label,
)
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.evaluate import endpoint, verdict
from policy_dataplane.policy.model import ExternalHost, Pod, Policy
from policy_dataplane.policy.world import World


def test_default_bank_has_the_design_figures() -> None:
    edges = bank_egress(BankSpec())
    assert len(edges) == 1500
    mean = statistics.mean(len(t) for t in edges.values())
    assert 8.2 < mean < 8.8  # the bank's 8.49 egress rules per service
    assert all(s not in targets for s, targets in edges.items())
    assert bank_egress(BankSpec()) == edges  # deterministic


def test_yaml_form_loads_into_the_same_objects() -> None:
    spec = BankSpec(services=30, namespaces=4, dry_run=True, opt_in_fraction=0.5)
    from_yaml = load_text(bank_yaml(spec), "bank.yaml")
    direct = bank_objects(spec)
    assert from_yaml == direct
    pods = [o for o in direct if isinstance(o, Pod)]
    policies = [o for o in direct if isinstance(o, Policy)]
    assert len(pods) == 30 and len(policies) == 31
    assert any(p.name == DRY_RUN_POLICY for p in policies)
    opted = [p for p in pods if OPT_IN_LABEL in p.labels]
    assert 0 < len(opted) < 30


def test_dry_run_bank_allows_everything_and_logs_undeclared_flows() -> None:
    spec = BankSpec(services=20, namespaces=2, dry_run=True)
    world = World.from_objects(bank_objects(spec))
    edges = bank_egress(spec)
    src = "s0000"
    declared = edges[src][0]
    undeclared = next(s for s in edges if s != src and s not in edges[src])
    ns_of = {p.name: p.namespace for p in world.pods.values()}
    ok = verdict(world, f"{ns_of[src]}/{src}", f"{ns_of[declared]}/{declared}", "TCP", spec.port)
    assert ok.allowed and not ok.ingress.logs
    logged = verdict(world, f"{ns_of[src]}/{src}", f"{ns_of[undeclared]}/{undeclared}", "TCP", spec.port)
    assert logged.allowed and logged.ingress.logs[0].policy == DRY_RUN_POLICY
    assert egress_label(declared) in world.pods[(ns_of[src], src)].labels


def test_endpoint_references() -> None:
    world = World.from_objects(bank_objects(BankSpec(services=3, namespaces=1)))
    pod = world.pods[("bank-00", "s0001")]
    assert endpoint(world, "bank-00/s0001") is pod
    assert endpoint(world, str(pod.ip)) is pod  # a pod's address means the pod
    assert endpoint(world, ("bank-00", "s0001")) is pod
    outside = endpoint(world, "192.0.2.1")
    assert isinstance(outside, ExternalHost) and str(outside) == "192.0.2.1"
