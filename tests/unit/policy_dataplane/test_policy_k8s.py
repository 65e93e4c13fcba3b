"""Kubernetes NetworkPolicy: defaulting, validation and the semantics implementations get wrong."""

from __future__ import annotations

import pytest
from policy_model_helpers import allowed, namespace, pod, yaml_world

from policy_dataplane.policy.documents import DocumentsInvalid, load_text
from policy_dataplane.policy.evaluate import Reason, verdict
from policy_dataplane.policy.model import Direction, Policy
from policy_dataplane.policy.world import World

WORLD = (
    namespace("dev", {"team": "a"})
    + namespace("prod", {"team": "b"})
    + pod("dev", "web", {"app": "web"}, "10.1.0.1", "http:80,metrics:9090,dns:53/UDP")
    + pod("dev", "client", {"app": "client"}, "10.1.0.2")
    + pod("dev", "other", {"app": "other"}, "10.1.0.3")
    + pod("prod", "client", {"app": "client"}, "10.2.0.2")
    + pod("prod", "web", {"app": "web"}, "10.2.0.1", "http:8080")
)


def np(spec: str, name: str = "p", ns: str = "dev") -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n"


def policy(spec: str) -> Policy:
    (obj,) = load_text(np(spec))
    assert isinstance(obj, Policy)
    return obj


# --- defaulting ----------------------------------------------------------------------------------------


def test_policy_types_default_ingress_only_without_egress_rules() -> None:
    assert policy("  podSelector: {}").types == {Direction.INGRESS}
    assert policy("  podSelector: {}\n  egress: []").types == {Direction.INGRESS}
    assert policy("  podSelector: {}\n  egress: [{}]").types == {Direction.INGRESS, Direction.EGRESS}
    assert policy("  podSelector: {}\n  policyTypes: []\n  egress: [{}]").types == {Direction.INGRESS, Direction.EGRESS}
    assert policy("  podSelector: {}\n  policyTypes: [Egress]").types == {Direction.EGRESS}


def test_rules_of_a_direction_not_in_policy_types_are_ignored() -> None:
    p = policy("  podSelector: {}\n  policyTypes: [Egress]\n  ingress: [{}]\n  egress: [{}]")
    assert p.ingress == () and len(p.egress) == 1


def test_port_without_protocol_is_tcp_and_protocol_without_port_is_every_port() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - ports: [{port: 80}, {protocol: UDP}]"))
    assert allowed(w, "dev/client", "dev/web", "TCP", 80)
    assert allowed(w, "dev/client", "dev/web", "UDP", 80)
    assert allowed(w, "dev/client", "dev/web", "UDP", 12345)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 81)
    assert not allowed(w, "dev/client", "dev/web", "SCTP", 80)


# --- isolation -----------------------------------------------------------------------------------------


def test_ingress_empty_list_allows_nothing_and_list_of_empty_rule_allows_everything() -> None:
    deny = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: []"))
    assert not allowed(deny, "dev/client", "dev/web")
    assert not allowed(deny, "8.8.8.8", "dev/web")
    allow = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{}]"))
    assert allowed(allow, "dev/client", "dev/web")
    assert allowed(allow, "8.8.8.8", "dev/web", "UDP", 53)
    assert allowed(allow, "prod/client", "dev/web", "SCTP", 7)


def test_egress_only_policy_leaves_ingress_open() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]"))
    assert allowed(w, "dev/client", "dev/web")
    v = verdict(w, "dev/web", "dev/client", "TCP", 80)
    assert not v.allowed and v.egress.reason is Reason.NOTHING_ALLOWED and v.ingress.reason is Reason.NOT_ISOLATED


def test_both_ends_must_allow() -> None:
    w = yaml_world(
        WORLD
        + np("  podSelector: {matchLabels: {app: client}}\n  policyTypes: [Egress]\n  egress: [{to: [{podSelector: {matchLabels: {app: web}}}]}]", "eg")
        + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: other}}}]}]", "in")
    )
    v = verdict(w, "dev/client", "dev/web", "TCP", 80)
    assert v.egress.allowed and not v.ingress.allowed and not v.allowed
    assert allowed(w, "dev/other", "dev/web")


def test_unselected_pods_are_not_isolated() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: []"))
    assert verdict(w, "dev/web", "dev/client", "TCP", 80).ingress.reason is Reason.NOT_ISOLATED


def test_udp_and_sctp_rules_still_isolate_tcp() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - ports: [{protocol: UDP, port: 53}, {protocol: SCTP, port: 5000}]"))
    assert allowed(w, "dev/client", "dev/web", "UDP", 53)
    assert allowed(w, "dev/client", "dev/web", "SCTP", 5000)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 53)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 5000)


# --- peers ---------------------------------------------------------------------------------------------


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]"))
    assert allowed(w, "dev/client", "dev/web")
    assert not allowed(w, "prod/client", "dev/web")


def test_empty_namespace_selector_means_all_pods_but_not_outside_addresses() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{namespaceSelector: {}}]}]"))
    assert allowed(w, "prod/client", "dev/web")
    assert allowed(w, "dev/other", "dev/web")
    assert not allowed(w, "8.8.8.8", "dev/web")


def test_both_selectors_in_one_peer_are_anded_and_separate_peers_ored() -> None:
    anded = yaml_world(WORLD + np(
        "  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n"
        "    - namespaceSelector: {matchLabels: {team: b}}\n      podSelector: {matchLabels: {app: client}}"
    ))
    assert allowed(anded, "prod/client", "dev/web")
    assert not allowed(anded, "dev/client", "dev/web")
    assert not allowed(anded, "prod/web", "dev/web")
    ored = yaml_world(WORLD + np(
        "  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n"
        "    - namespaceSelector: {matchLabels: {team: b}}\n    - podSelector: {matchLabels: {app: client}}"
    ))
    assert allowed(ored, "prod/web", "dev/web")
    assert allowed(ored, "dev/client", "dev/web")
    assert not allowed(ored, "dev/other", "dev/web")


def test_match_expressions_operators() -> None:
    def w(expr: str) -> World:
        return yaml_world(WORLD + np(
            "  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n"
            f"    - namespaceSelector: {{}}\n      podSelector: {{matchExpressions: [{expr}]}}"
        ))
    in_ = w("{key: app, operator: In, values: [client]}")
    assert allowed(in_, "prod/client", "dev/web") and not allowed(in_, "dev/other", "dev/web")
    notin = w("{key: app, operator: NotIn, values: [client]}")
    assert not allowed(notin, "prod/client", "dev/web") and allowed(notin, "dev/other", "dev/web")
    exists = w("{key: app, operator: Exists}")
    assert allowed(exists, "dev/other", "dev/web")
    absent = w("{key: app, operator: DoesNotExist}")
    assert not allowed(absent, "dev/other", "dev/web")


def test_not_in_matches_pods_without_the_key() -> None:
    w = yaml_world(
        WORLD + pod("dev", "bare", {}, "10.1.0.9")
        + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [client]}]}}]}]")
    )
    assert allowed(w, "dev/bare", "dev/web")
    assert not allowed(w, "dev/client", "dev/web")


def test_namespace_selected_by_its_name_label() -> None:
    w = yaml_world(WORLD + np(
        "  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: prod}}}]}]"
    ))
    assert allowed(w, "prod/client", "dev/web") and not allowed(w, "dev/client", "dev/web")


def test_ip_block_with_except_also_matches_pod_ips_and_narrows_only_its_peer() -> None:
    w = yaml_world(WORLD + np(
        "  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n"
        "    - ipBlock: {cidr: 10.0.0.0/8, except: [10.2.0.0/16]}\n"
        "    - podSelector: {matchLabels: {app: other}}"
    ))
    assert allowed(w, "dev/client", "dev/web")  # pod IP 10.1.0.2 inside the cidr
    assert allowed(w, "10.9.9.9", "dev/web")
    assert not allowed(w, "prod/client", "dev/web")  # 10.2.0.2 is in except
    assert not allowed(w, "10.2.3.4", "dev/web")
    assert not allowed(w, "192.168.1.1", "dev/web")
    assert allowed(w, "dev/other", "dev/web")  # except does not narrow the other peer


def test_end_port_is_inclusive() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{ports: [{port: 8000, endPort: 8010}]}]"))
    assert allowed(w, "dev/client", "dev/web", "TCP", 8000)
    assert allowed(w, "dev/client", "dev/web", "TCP", 8010)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 8011)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 7999)


def test_named_ports_resolve_per_destination_pod_and_protocol() -> None:
    w = yaml_world(
        WORLD
        + np("  podSelector: {matchLabels: {app: client}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {}}]\n    ports: [{port: http}]")
    )
    assert allowed(w, "dev/client", "dev/web", "TCP", 80)  # dev/web: http = 80
    assert not allowed(w, "dev/client", "dev/web", "TCP", 8080)
    assert allowed(w, "dev/client", "prod/web", "TCP", 8080)  # prod/web: http = 8080
    assert not allowed(w, "dev/client", "prod/web", "TCP", 80)
    assert not allowed(w, "dev/client", "dev/other", "TCP", 80)  # no such port name there
    w2 = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{ports: [{port: dns}]}]"))
    assert not allowed(w2, "dev/client", "dev/web", "TCP", 53)  # dns is a UDP port: protocol must match
    w3 = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{ports: [{port: dns, protocol: UDP}]}]"))
    assert allowed(w3, "dev/client", "dev/web", "UDP", 53)


def test_egress_with_dns_recipe() -> None:
    w = yaml_world(WORLD + np(
        "  podSelector: {matchLabels: {app: client}}\n  policyTypes: [Egress]\n  egress:\n"
        "  - to: [{podSelector: {matchLabels: {app: web}}}]\n    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]"
    ))
    assert allowed(w, "dev/client", "dev/web", "UDP", 53)
    assert allowed(w, "dev/client", "dev/web", "TCP", 53)
    assert not allowed(w, "dev/client", "dev/web", "TCP", 80)
    assert not allowed(w, "dev/client", "8.8.8.8", "UDP", 53)


def test_replies_are_not_policy_decisions_but_the_reverse_flow_is() -> None:
    w = yaml_world(WORLD + np("  podSelector: {matchLabels: {app: web}}\n  ingress: []"))
    # A connection opened by web to client is allowed (egress of web is not isolated) ...
    assert allowed(w, "dev/web", "dev/client")
    # ... while client may not open one to web.
    assert not allowed(w, "dev/client", "dev/web")


# --- validation: what the API server rejects -------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, field, message",
    [
        ("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]", "spec.ingress[0].from[0]", "more than 1 peer"),
        ("  podSelector: {}\n  ingress: [{from: [{}]}]", "spec.ingress[0].from[0]", "must specify a peer"),
        ("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]", "except[0]", "strict subset"),
        ("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]", "except[0]", "strict subset"),
        ("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]", "cidr", "not a valid CIDR"),
        ("  podSelector: {}\n  ingress: [{ports: [{port: 80, endPort: 79}]}]", "endPort", "greater than or equal"),
        ("  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}]", "endPort", "non-numeric"),
        ("  podSelector: {}\n  ingress: [{ports: [{endPort: 90}]}]", "endPort", "port is not specified"),
        ("  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]", "port", "between 1 and 65535"),
        ("  podSelector: {}\n  ingress: [{ports: [{port: 70000}]}]", "port", "between 1 and 65535"),
        ("  podSelector: {}\n  ingress: [{ports: [{port: Bad_Name}]}]", "port", "port name"),
        ("  podSelector: {}\n  ingress: [{ports: [{port: 80, protocol: ICMP}]}]", "protocol", "TCP"),
        ("  podSelector: {matchExpressions: [{key: a, operator: In}]}", "matchExpressions[0].values", "must be specified"),
        ("  podSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}", "matchExpressions[0].values", "may not be specified"),
        ("  podSelector: {matchExpressions: [{key: a, operator: Foo}]}", "operator", ""),
        ("  podSelector: {matchLabels: {'-bad': x}}", "matchLabels", "label key"),
        ("  podSelector: {matchLabels: {a: 'bad value'}}", "matchLabels", "label value"),
        ("  podSelector: {}\n  policyTypes: [Ingress, Sideways]", "policyTypes", ""),
        ("  podSelector: {}\n  ingres: []", "spec.ingres", "unknown field"),
    ],
)
def test_invalid_policies_are_rejected_naming_the_field(spec: str, field: str, message: str) -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text(np(spec), "bad.yaml")
    text = str(err.value)
    assert "bad.yaml#1 NetworkPolicy dev/p" in text
    assert field in text
    assert message in text


def test_bad_names_are_rejected() -> None:
    with pytest.raises(DocumentsInvalid, match="metadata.name"):
        load_text(np("  podSelector: {}", name="Bad_Name"))
    with pytest.raises(DocumentsInvalid, match="metadata.namespace"):
        load_text(np("  podSelector: {}", ns="Dev"))


def test_ip_block_host_bits_are_accepted_and_cleared() -> None:
    p = policy("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.1.2.3/8}}]}]")
    assert str(p.ingress[0].source.nets[0]) == "10.0.0.0/8"


def test_pods_are_validated() -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: dev, annotations: {cni.projectcalico.org/ipAddrs: 'nope'}}\n"
            "spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}, {name: http, containerPort: 81}, {containerPort: 0}]}]}\n"
        )
    text = str(err.value)
    assert "duplicate port name" in text
    assert "containerPort" in text
    assert "ipAddrs" in text
