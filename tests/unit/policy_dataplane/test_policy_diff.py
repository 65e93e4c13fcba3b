"""The semantic diff of two worlds lists exactly the pairs whose oracle verdict changes."""

from __future__ import annotations

import itertools

from policy_model_helpers import fixture_world

from policy_dataplane.policy.diff import verdict_changes
from policy_dataplane.policy.evaluate import verdict

TASK_SERVER = "203.0.113.10"
FLOWS = [("tcp", 9000), ("tcp", 8080), ("tcp", 443)]


def refs_of(world) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(f"{ns}/{name}" for ns, name in world.pods) + [TASK_SERVER]


def test_case_6_against_the_open_world() -> None:
    before = fixture_world("microseg-base.yaml")
    after = fixture_world("microseg-base.yaml", "case-6-only-crm-works.yaml")
    changes = {(c.src, c.dst, c.port): (c.before, c.after) for c in verdict_changes(before, after, refs_of(before), FLOWS)}
    assert changes[("dev/webui", "dev/client", 9000)] == (True, False)
    assert changes[("crm/crm", "billing/billing", 9000)] == (True, False)
    assert ("crm/crm", "dev/client", 9000) not in changes  # the CRM workflow keeps working
    assert ("dev/client", TASK_SERVER, 443) not in changes
    assert not any(src == dst for src, dst, _ in changes)  # a pod to itself never crosses a filter


def test_changes_equal_the_per_pair_oracle() -> None:
    before = fixture_world("microseg-base.yaml", "case-3-deny-ingress.yaml")
    after = fixture_world("microseg-base.yaml", "case-3-deny-ingress.yaml", "case-4-billing-from-dev.yaml")
    refs = refs_of(before)
    found = {(c.src, c.dst, c.port) for c in verdict_changes(before, after, refs, FLOWS)}
    expected = {
        (src, dst, port)
        for src, dst in itertools.permutations(refs, 2) for _, port in FLOWS
        if verdict(before, src, dst, "TCP", port).allowed != verdict(after, src, dst, "TCP", port).allowed
    }
    assert found == expected and found  # case 4 opens billing to dev
    assert all(dst == "billing/billing" for _, dst, _ in found)


def test_identical_worlds_differ_nowhere() -> None:
    world = fixture_world("microseg-base.yaml", "case-6-only-crm-works.yaml")
    assert verdict_changes(world, world, refs_of(world), FLOWS) == []
