"""Calico v3 policy: tiers and order, actions, protocol/ICMP/ports/nets matches, scoping, network sets,
staged policies, and validation."""

from __future__ import annotations

import pytest
from policy_model_helpers import allowed, namespace, pod, yaml_world

from policy_dataplane.policy.documents import DocumentsInvalid, load_text
from policy_dataplane.policy.evaluate import Outcome, Reason, verdict
from policy_dataplane.policy.model import Action, Direction, Policy

WORLD = (
    namespace("dev", {"env": "dev"})
    + namespace("prod", {"env": "prod"})
    + pod("dev", "web", {"app": "web"}, "10.1.0.1", "http:80")
    + pod("dev", "client", {"app": "client"}, "10.1.0.2", sa="frontend")
    + pod("prod", "client", {"app": "client"}, "10.2.0.2", sa="frontend")
    + pod("prod", "batch", {"app": "batch"}, "10.2.0.3", sa="batch")
)


def gnp(name: str, spec: str) -> str:
    return f"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}\n---\n"


def cnp(name: str, spec: str, ns: str = "dev", kind: str = "NetworkPolicy") -> str:
    return f"apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n"


def tier(name: str, order: float | None, default_action: str | None = None) -> str:
    spec = []
    if order is not None:
        spec.append(f"order: {order}")
    if default_action:
        spec.append(f"defaultAction: {default_action}")
    return f"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {{{', '.join(spec)}}}\n---\n"


WEB = '  selector: app == "web"\n'


# --- order, tiers, actions -----------------------------------------------------------------------------


def test_lower_order_first_ties_by_name_and_no_order_last() -> None:
    w = yaml_world(WORLD
        + gnp("b-deny", WEB + "  order: 10\n  ingress: [{action: Deny}]")
        + gnp("a-allow", WEB + "  order: 10\n  ingress: [{action: Allow}]"))
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert v.allowed and v.ingress.decided_by and v.ingress.decided_by.policy == "a-allow"
    w2 = yaml_world(WORLD
        + gnp("a-unordered", WEB + "  ingress: [{action: Allow}]")
        + gnp("z-ordered", WEB + "  order: 99999\n  ingress: [{action: Deny}]"))
    assert not allowed(w2, "dev/client", "dev/web")


def test_namespaced_calico_policy_only_selects_its_namespace() -> None:
    w = yaml_world(WORLD + cnp("deny", '  selector: app == "client"\n  ingress: [{action: Deny}]'))
    assert not allowed(w, "dev/web", "dev/client")
    assert allowed(w, "dev/web", "prod/client")


def test_log_does_not_end_evaluation_and_is_recorded() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Log}, {action: Log, protocol: UDP}, {action: Allow, protocol: TCP}]"))
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert v.allowed
    assert [(r.policy, r.index, r.action) for r in v.ingress.logs] == [("p", 0, Action.LOG)]
    assert v.ingress.decided_by and v.ingress.decided_by.index == 2


def test_pass_skips_to_the_next_tier_and_tier_default_denies() -> None:
    w = yaml_world(WORLD
        + tier("security", 100)
        + gnp("security.pass-web", WEB + "  tier: security\n  ingress: [{action: Pass, source: {selector: app == 'client'}}]")
        + gnp("default-allow", WEB + "  order: 10\n  ingress: [{action: Allow}]"))
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert v.allowed
    assert [t.tier for t in v.ingress.tiers] == ["security", "default"]
    assert v.ingress.tiers[0].outcome is Outcome.PASS
    # Nothing in the security tier matched batch: end of tier denies, the default tier is never reached.
    v2 = verdict(w, "prod/batch", "dev/web", "TCP", 80)
    assert not v2.allowed and v2.ingress.reason is Reason.NOTHING_ALLOWED
    assert v2.ingress.decided_in_tier == "security" and len(v2.ingress.tiers) == 1


def test_tier_default_action_pass_and_passing_every_tier_reaches_the_profile() -> None:
    w = yaml_world(WORLD
        + tier("observe", 50, "Pass")
        + gnp("observe.log", WEB + "  tier: observe\n  ingress: [{action: Log}]"))
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert v.allowed and v.ingress.reason is Reason.PASSED_THROUGH
    assert len(v.ingress.logs) == 1


def test_tiers_ordered_by_tier_order_not_policy_order() -> None:
    w = yaml_world(WORLD
        + tier("first", 1) + tier("second", 2)
        + gnp("second.allow", WEB + "  tier: second\n  order: 1\n  ingress: [{action: Allow}]")
        + gnp("first.deny", WEB + "  tier: first\n  order: 1000\n  ingress: [{action: Deny}]"))
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert not v.allowed and v.ingress.decided_by and v.ingress.decided_by.tier == "first"


def test_kubernetes_policies_sit_in_the_default_tier_at_order_1000() -> None:
    k8s = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-all, namespace: dev}\n"
           "spec: {podSelector: {}, ingress: [{}]}\n---\n")
    before = yaml_world(WORLD + k8s + gnp("deny", WEB + "  order: 999\n  ingress: [{action: Deny}]"))
    assert not allowed(before, "dev/client", "dev/web")
    after = yaml_world(WORLD + k8s + gnp("deny", WEB + "  order: 1001\n  ingress: [{action: Deny}]"))
    v = verdict(after, "dev/client", "dev/web", "TCP", 80)
    assert v.allowed and v.ingress.decided_by and v.ingress.decided_by.policy == "dev/knp.default.allow-all"


def test_types_defaulting() -> None:
    def types(spec: str) -> frozenset[Direction]:
        (p,) = load_text(gnp("p", spec))
        assert isinstance(p, Policy)
        return p.types
    assert types("  selector: all()") == {Direction.INGRESS}
    assert types("  egress: [{action: Allow}]") == {Direction.EGRESS}
    assert types("  ingress: [{action: Allow}]\n  egress: [{action: Allow}]") == {Direction.INGRESS, Direction.EGRESS}


# --- matches -------------------------------------------------------------------------------------------


def test_protocol_and_not_protocol() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Deny, notProtocol: TCP}, {action: Allow}]"))
    assert allowed(w, "dev/client", "dev/web", "TCP", 80)
    assert not allowed(w, "dev/client", "dev/web", "UDP", 80)
    w2 = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, protocol: 132}]"))
    assert allowed(w2, "dev/client", "dev/web", "SCTP", 80)
    assert not allowed(w2, "dev/client", "dev/web", "TCP", 80)


def test_icmp_type_and_code_and_not_icmp() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress:\n  - {action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}\n"
                                          "  - {action: Allow, protocol: ICMP, notICMP: {type: 13}}"))
    assert allowed(w, "dev/client", "dev/web", "ICMP", None, icmp_type=8, icmp_code=0)
    assert allowed(w, "dev/client", "dev/web", "ICMP", None, icmp_type=3, icmp_code=1)  # second rule
    assert not allowed(w, "dev/client", "dev/web", "ICMP", None, icmp_type=13, icmp_code=0)
    w2 = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 8}}]"))
    assert allowed(w2, "dev/client", "dev/web", "ICMP", None, icmp_type=8, icmp_code=5)
    assert not allowed(w2, "dev/client", "dev/web", "ICMP", None, icmp_type=0)


def test_ports_ranges_named_ports_and_not_ports() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, protocol: TCP, destination: "
                                          "{ports: ['1000:2000', http, 22], notPorts: [1500]}}]"))
    assert allowed(w, "dev/client", "dev/web", "TCP", 1000)
    assert allowed(w, "dev/client", "dev/web", "TCP", 2000)
    assert allowed(w, "dev/client", "dev/web", "TCP", 80)  # named port http
    assert allowed(w, "dev/client", "dev/web", "TCP", 22)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 1500)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 2001)


def test_source_ports() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, protocol: UDP, source: {ports: [53]}}]"))
    assert allowed(w, "dev/client", "dev/web", "UDP", 5000, src_port=53)
    assert not allowed(w, "dev/client", "dev/web", "UDP", 5000, src_port=54)
    assert not allowed(w, "dev/client", "dev/web", "UDP", 5000)  # unknown source port never matches


def test_nets_and_not_nets() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, source: {nets: [10.0.0.0/8, 192.168.0.0/16], notNets: [10.2.0.0/16]}}]"))
    assert allowed(w, "dev/client", "dev/web")
    assert allowed(w, "192.168.3.4", "dev/web")
    assert not allowed(w, "prod/client", "dev/web")
    assert not allowed(w, "172.16.0.1", "dev/web")


def test_selector_and_not_selector() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, source: {selector: has(app), notSelector: app == 'batch'}}]"))
    assert allowed(w, "dev/client", "dev/web")
    assert allowed(w, "prod/client", "dev/web")  # global policy: selector spans namespaces
    assert not allowed(w, "prod/batch", "dev/web")
    assert not allowed(w, "8.8.8.8", "dev/web")  # an outside address carries no labels


def test_namespaced_rule_selector_is_scoped_to_the_policy_namespace() -> None:
    w = yaml_world(WORLD + cnp("p", WEB + "  ingress: [{action: Allow, source: {selector: app == 'client'}}]"))
    assert allowed(w, "dev/client", "dev/web")
    assert not allowed(w, "prod/client", "dev/web")


def test_rule_namespace_selector() -> None:
    w = yaml_world(WORLD + cnp("p", WEB + "  ingress: [{action: Allow, source: {namespaceSelector: env == 'prod', selector: app == 'client'}}]"))
    assert allowed(w, "prod/client", "dev/web")
    assert not allowed(w, "dev/client", "dev/web")
    assert not allowed(w, "prod/batch", "dev/web")
    w2 = yaml_world(WORLD + cnp("p", WEB + "  ingress: [{action: Allow, source: {namespaceSelector: all()}}]"))
    assert allowed(w2, "prod/batch", "dev/web")


def test_global_network_policy_namespace_selector() -> None:
    w = yaml_world(WORLD + gnp("p", "  namespaceSelector: env == 'prod'\n  ingress: [{action: Deny}]"))
    assert not allowed(w, "dev/web", "prod/client")
    assert allowed(w, "prod/client", "dev/web")


def test_service_account_matches() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, source: {serviceAccounts: {names: [frontend]}}}]"))
    assert allowed(w, "prod/client", "dev/web") and allowed(w, "dev/client", "dev/web")
    assert not allowed(w, "prod/batch", "dev/web")
    w2 = yaml_world(WORLD + cnp("p", WEB + "  ingress: [{action: Allow, source: {serviceAccounts: {names: [frontend]}}}]"))
    assert allowed(w2, "dev/client", "dev/web") and not allowed(w2, "prod/client", "dev/web")
    w3 = yaml_world(WORLD + gnp("p", "  serviceAccountSelector: projectcalico.org/name == 'batch'\n  egress: [{action: Deny}]"))
    assert not allowed(w3, "prod/batch", "dev/web") and allowed(w3, "prod/client", "dev/web")


def test_network_sets_are_selectable_by_labels() -> None:
    sets = (
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: partners, labels: {role: partner}}\n"
        "spec: {nets: [198.51.100.0/24]}\n---\n"
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: office, namespace: dev, labels: {role: office}}\n"
        "spec: {nets: [192.0.2.0/24]}\n---\n"
    )
    w = yaml_world(WORLD + sets + gnp("p", WEB + "  ingress: [{action: Allow, source: {selector: role == 'partner'}}]"))
    assert allowed(w, "198.51.100.7", "dev/web")
    assert not allowed(w, "203.0.113.1", "dev/web")
    # global() picks only non-namespaced sets; a namespaced policy sees its namespace's sets.
    w2 = yaml_world(WORLD + sets + cnp("p", WEB + "  ingress: [{action: Allow, source: {namespaceSelector: global(), selector: has(role)}}]"))
    assert allowed(w2, "198.51.100.7", "dev/web") and not allowed(w2, "192.0.2.1", "dev/web")
    w3 = yaml_world(WORLD + sets + cnp("p", WEB + "  ingress: [{action: Allow, source: {selector: has(role)}}]"))
    assert allowed(w3, "192.0.2.1", "dev/web") and not allowed(w3, "198.51.100.7", "dev/web")
    # Kubernetes pod selectors never match network sets.
    k8s = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: k, namespace: dev}\n"
           "spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {role: office}}}]}]}\n---\n")
    assert not allowed(yaml_world(WORLD + sets + k8s), "192.0.2.1", "dev/web")


def test_ip_version_filters() -> None:
    w = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, ipVersion: 6}]"))
    assert not allowed(w, "dev/client", "dev/web")


# --- staged policies -----------------------------------------------------------------------------------


def test_staged_policies_are_never_enforced_but_reported() -> None:
    staged = cnp("deny-web", WEB + "  ingress: [{action: Deny}]", kind="StagedNetworkPolicy")
    w = yaml_world(WORLD + staged)
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert v.allowed
    assert v.staged is not None and not v.staged.allowed and v.would_change
    assert v.staged.ingress.decided_by and v.staged.ingress.decided_by.staged


def test_staged_delete_and_staged_kubernetes_policy() -> None:
    enforced = cnp("deny-web", WEB + "  ingress: [{action: Deny}]")
    delete = cnp("deny-web", "  stagedAction: Delete", kind="StagedNetworkPolicy")
    w = yaml_world(WORLD + enforced + delete)
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert not v.allowed and v.staged is not None and v.staged.allowed
    sknp = ("apiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata: {name: iso, namespace: dev}\n"
            "spec: {podSelector: {}, policyTypes: [Ingress]}\n---\n")
    w2 = yaml_world(WORLD + sknp)
    v2 = verdict(w2, "dev/client", "dev/web", "TCP", 80)
    assert v2.allowed and v2.staged is not None and not v2.staged.allowed


def test_staged_set_replaces_enforced_version() -> None:
    enforced = cnp("web", WEB + "  ingress: [{action: Deny}]")
    staged = cnp("web", WEB + "  ingress: [{action: Allow}]", kind="StagedNetworkPolicy")
    w = yaml_world(WORLD + enforced + staged)
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert not v.allowed and v.staged is not None and v.staged.allowed


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, field, message",
    [
        ("  ingress: [{action: Accept}]", "spec.ingress[0].action", "must be one of"),
        ("  ingress: [{action: Allow, destination: {ports: [80]}}]", "spec.ingress[0].destination", "ports need protocol"),
        ("  ingress: [{action: Allow, protocol: ICMP, destination: {ports: [80]}}]", "destination", "ports need protocol"),
        ("  ingress: [{action: Allow, icmp: {type: 8}}]", "spec.ingress[0].icmp", "ICMP"),
        ("  ingress: [{action: Allow, protocol: ICMP, icmp: {code: 1}}]", "icmp.code", "needs a type"),
        ("  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 255}}]", "icmp.type", "between 0 and 254"),
        ("  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 3, code: 256}}]", "icmp.code", "between 0 and 255"),
        ("  ingress: [{action: Allow, protocol: ICMPv6, ipVersion: 4, icmp: {type: 1}}]", "icmp", "ipVersion"),
        ("  ingress: [{action: Allow, protocol: TCP, destination: {ports: ['2000:1000']}}]", "ports[0]", "range"),
        ("  ingress: [{action: Allow, protocol: TCP, destination: {ports: [70000]}}]", "ports[0]", "0-65535"),
        ("  ingress: [{action: Allow, protocol: tcpx}]", "protocol", "must be one of"),
        ("  ingress: [{action: Allow, protocol: 256}]", "protocol", "1..255"),
        ("  ingress: [{action: Allow, source: {nets: [10.0.0.0/40]}}]", "source.nets[0]", "CIDR"),
        ("  ingress: [{action: Allow, ipVersion: 4, source: {nets: ['fd00::/8']}}]", "source.nets[0]", "IPv4"),
        ("  ingress: [{action: Allow, ipVersion: 5}]", "ipVersion", "4 or 6"),
        ("  selector: app = 'x'", "spec.selector", "selector"),
        ("  ingress: [{action: Allow, source: {selector: 'has('}}]", "source.selector", "selector"),
        ("  ingress: [{action: Allow, http: {methods: [GET]}}]", "http", "proxy"),
        ("  ingress: [{action: Allow, destination: {services: {name: x}}}]", "services", "not supported"),
        ("  doNotTrack: true", "spec.applyOnForward", "must be true when doNotTrack"),
        ("  preDNAT: true\n  applyOnForward: true\n  egress: [{action: Allow}]", "spec.egress", "ingress rules only"),
        ("  preDNAT: true\n  doNotTrack: true\n  applyOnForward: true", "spec.preDNAT", "both doNotTrack"),
        ("  preDNAT: true\n  applyOnForward: true\n  types: [Egress]", "spec.types", "Ingress only"),
        ("  tier: security", "metadata.name", "security.<name>"),
        ("  order: first", "spec.order", ""),
        ("  selekt: all()", "spec.selekt", "unknown field"),
    ],
)
def test_invalid_calico_policies_are_rejected(spec: str, field: str, message: str) -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text(gnp("p", spec), "bad.yaml")
    text = str(err.value)
    assert "bad.yaml#1 GlobalNetworkPolicy p" in text
    assert field in text and message in text


def test_namespace_selector_only_on_global_policies() -> None:
    with pytest.raises(DocumentsInvalid, match="only a GlobalNetworkPolicy"):
        load_text(cnp("p", "  namespaceSelector: all()"))


def test_network_set_and_tier_validation() -> None:
    with pytest.raises(DocumentsInvalid, match="spec.nets"):
        load_text("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s}\nspec: {nets: [nope]}\n")
    with pytest.raises(DocumentsInvalid, match="defaultAction"):
        load_text("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {defaultAction: Allow}\n")
    with pytest.raises(DocumentsInvalid, match="no namespace"):
        load_text("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s, namespace: x}\nspec: {nets: []}\n")


def test_not_selector_alone_still_scopes_a_namespaced_rule_to_its_namespace() -> None:
    w = yaml_world(WORLD + cnp("p", WEB + "  ingress: [{action: Allow, source: {notSelector: app == 'web'}}]"))
    assert allowed(w, "dev/client", "dev/web")
    assert not allowed(w, "prod/client", "dev/web")  # Calico limits the rule to dev as soon as notSelector is used
    assert not allowed(w, "8.8.8.8", "dev/web")
    g = yaml_world(WORLD + gnp("p", WEB + "  ingress: [{action: Allow, source: {notSelector: app == 'web'}}]"))
    assert allowed(g, "prod/client", "dev/web") and allowed(g, "8.8.8.8", "dev/web")  # global: no scoping


def test_all_namespaces_does_not_include_global_network_sets() -> None:
    sets = ("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: partners, labels: {role: partner}}\n"
            "spec: {nets: [198.51.100.0/24]}\n---\n")
    w = yaml_world(WORLD + sets + gnp("p", WEB + "  ingress: [{action: Allow, source: {namespaceSelector: all()}}]"))
    assert allowed(w, "prod/batch", "dev/web")
    assert not allowed(w, "198.51.100.7", "dev/web")
