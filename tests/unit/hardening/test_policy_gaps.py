"""Issue #8, item 6: what Calico's validator refuses, refused here too (each repro of the issue)."""

from __future__ import annotations

import pytest

from policy_dataplane.policy.documents import DocumentsInvalid, load_text

GNP = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: p}
spec:
%s
"""


def refused(spec: str, doc: str = GNP) -> str:
    with pytest.raises(DocumentsInvalid) as info:
        load_text(doc % spec, "p.yaml")
    return str(info.value)


@pytest.mark.parametrize("spec, field", [
    ("  selector: global()", "spec.selector"),
    ("  namespaceSelector: global()", "spec.namespaceSelector"),
    ("  serviceAccountSelector: '!global()'", "spec.serviceAccountSelector"),
    ("  ingress: [{action: Allow, source: {selector: global() || a == 'b'}}]", "spec.ingress[0].source.selector"),
    ("  ingress: [{action: Allow, source: {notSelector: global()}}]", "spec.ingress[0].source.notSelector"),
    ("  ingress: [{action: Allow, source: {serviceAccounts: {selector: global()}}}]",
     "spec.ingress[0].source.serviceAccounts.selector"),
])
def test_global_is_only_allowed_in_a_rules_namespace_selector(spec: str, field: str) -> None:
    assert f"{field}: global() is only allowed in a rule's namespaceSelector" in refused(spec)


def test_global_in_a_rules_namespace_selector_is_fine() -> None:
    assert load_text(GNP % "  ingress: [{action: Allow, source: {namespaceSelector: global()}}]")


def test_a_type_listed_twice_is_refused() -> None:
    assert "spec.types: ['Ingress', 'Ingress'] lists a type twice" in refused("  types: [Ingress, Ingress]")


def test_the_default_tier_has_no_order_of_its_own() -> None:
    tier = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\nspec: {order: %s}\n"
    with pytest.raises(DocumentsInvalid, match="spec.order: the default tier's order is fixed"):
        load_text(tier % 100)
    assert load_text(tier % 1000000)  # what `get -o yaml` shows for it


def test_ipv4_and_ipv6_mixed_in_one_rule_is_refused() -> None:
    spec = "  ingress: [{action: Allow, source: {nets: [10.0.0.0/8]}, destination: {notNets: ['fd00::/8']}}]"
    assert "spec.ingress[0]: mixes IPv4 and IPv6" in refused(spec)
    same_side = "  egress: [{action: Deny, destination: {nets: [10.0.0.0/8, 'fd00::/8']}}]"
    assert "spec.egress[0]: mixes IPv4 and IPv6" in refused(same_side)


def test_not_nets_of_everything_is_refused() -> None:
    spec = "  egress: [{action: Allow, destination: {notNets: [0.0.0.0/0]}}]"
    assert "spec.egress[0].destination.notNets[0]: 0.0.0.0/0 excludes every address" in refused(spec)
