"""Host endpoints in the oracle: default deny with failsafe ports, selection by label, applyOnForward,
doNotTrack (the reply needs its own rule), preDNAT, a pod's traffic to its own host, and validation."""

from __future__ import annotations

import dataclasses
from ipaddress import ip_address

import pytest
from policy_model_helpers import namespace, pod

from policy_dataplane.policy.documents import DocumentsInvalid, load_text
from policy_dataplane.policy.evaluate import Reason, verdict
from policy_dataplane.policy.model import HostNode, Pod, ServiceAccount
from policy_dataplane.policy.world import World

NODES = (HostNode("node1", ip_address("10.99.0.1")), HostNode("node2", ip_address("10.99.0.2")),
         HostNode("tasks", ip_address("10.99.0.200"), external=True))
BASE = (namespace("dev", {"env": "dev"}) + namespace("prod", {"env": "prod"})
        + pod("dev", "web", {"app": "web"}, "192.168.0.1") + pod("prod", "db", {"app": "db"}, "192.168.0.65"))
PLACED = {("dev", "web"): "node1", ("prod", "db"): "node2"}


def hep(name: str, node: str, ip: str, labels: str, interface: str = "eth0", profiles: str = "") -> str:
    extra = f"\n  profiles: [{profiles}]" if profiles else ""
    return (f"apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: {name}, labels: {labels}}}\n"
            f"spec:\n  node: {node}\n  interfaceName: '{interface}'\n  expectedIPs: ['{ip}']{extra}\n---\n")


NODE_HEPS = hep("node1-eth0", "node1", "10.99.0.1", "{role: node}") + hep("node2-eth0", "node2", "10.99.0.2", "{role: node}")
HEPS = NODE_HEPS + hep("tasks-eth0", "tasks", "10.99.0.200", "{role: external}")
NO_SSH_FAILSAFE = """apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec:
  failsafeInboundHostPorts: [{protocol: TCP, port: 179}]
---
"""


def gnp(name: str, spec: str) -> str:
    return f"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}\n---\n"


def world(text: str) -> World:
    objects = [dataclasses.replace(o, node=PLACED[o.key]) if isinstance(o, Pod) else o
               for o in load_text(BASE + text, "test.yaml")]
    w = World.from_objects(objects)
    w.set_nodes(NODES)
    return w


def ok(w: World, src: str, dst: str, port: int | None = 8080, protocol: str = "TCP") -> bool:
    return verdict(w, src, dst, protocol, port).allowed


def test_without_host_endpoints_nodes_are_open() -> None:
    w = world("")
    assert ok(w, "tasks", "node1") and ok(w, "node1", "tasks") and ok(w, "dev/web", "node2")


def test_a_host_endpoint_without_policy_denies_except_failsafe_and_forwarded_traffic() -> None:
    w = world(NODE_HEPS)
    assert not ok(w, "tasks", "node1", 8080)
    v = verdict(w, "tasks", "node1", "TCP", 8080)
    assert not v.allowed and v.hops[-1].reason is Reason.HOST_ENDPOINT_DEFAULT_DENY
    assert ok(w, "tasks", "node1", 22) and ok(w, "node2", "node1", 179)  # failsafe in (and out, node2's side)
    assert not ok(w, "node1", "tasks", 443)  # node1's own egress: no policy
    assert ok(w, "node1", "tasks", 53, "UDP")  # failsafe out
    assert ok(w, "tasks", "dev/web", 80) and ok(w, "dev/web", "prod/db", 80)  # forwarded: not policed
    assert ok(w, "node1", "dev/web", 80)  # a host to its own pod
    assert not ok(w, "node2", "dev/web", 80)  # node2's own egress is not allowed
    assert ok(w, "dev/web", "node1", 9999)  # DefaultEndpointToHostAction Accept
    w = world(HEPS)  # the external server too: its own egress and ingress are guarded now
    assert not ok(w, "tasks", "node1", 22) and ok(w, "tasks", "node1", 179)
    v = verdict(w, "node1", "tasks", "UDP", 53)
    assert not v.allowed and v.hops[0].allowed and not v.hops[1].allowed  # tasks' inbound 53/udp: not failsafe


def test_default_allow_profile_allows_what_no_policy_decides() -> None:
    w = world(hep("node1-eth0", "node1", "10.99.0.1", "{role: node}", profiles="projectcalico-default-allow"))
    assert ok(w, "tasks", "node1", 8080) and ok(w, "node1", "tasks", 443)
    assert verdict(w, "tasks", "node1", "TCP", 8080).hops[-1].reason is Reason.PROFILE_ALLOWS


def test_ssh_only_from_one_namespace() -> None:
    ssh = gnp("ssh-from-dev", "  selector: role == 'node'\n  types: [Ingress]\n  ingress:\n"
                              "  - {action: Allow, protocol: TCP, source: {namespaceSelector: env == 'dev'},"
                              " destination: {ports: [22]}}")
    w = world(HEPS + NO_SSH_FAILSAFE + ssh)
    assert ok(w, "dev/web", "node2", 22)
    assert not ok(w, "prod/db", "node1", 22)
    assert not ok(w, "tasks", "node1", 22)
    assert ok(w, "node2", "node1", 179)  # BGP stays failsafe
    v = verdict(w, "dev/web", "node2", "TCP", 22)
    assert v.hops[-1].decided_by is not None and v.hops[-1].decided_by.policy == "ssh-from-dev"


def test_deny_all_keeps_bgp_and_pods_unless_apply_on_forward() -> None:
    deny = gnp("deny-all", "  selector: has(role)\n  types: [Ingress, Egress]")
    w = world(NODE_HEPS + deny)
    assert ok(w, "node1", "node2", 179) and ok(w, "node1", "tasks", 179)
    assert not ok(w, "tasks", "node1", 8080)
    assert ok(w, "tasks", "dev/web", 80) and ok(w, "dev/web", "tasks", 443) and ok(w, "dev/web", "prod/db", 5432)
    forward = gnp("deny-all-forward", "  selector: role == 'node'\n  applyOnForward: true\n  types: [Ingress, Egress]")
    w = world(NODE_HEPS + deny + forward)
    assert ok(w, "node1", "node2", 179)
    assert not ok(w, "tasks", "dev/web", 80) and not ok(w, "dev/web", "tasks", 443)
    assert not ok(w, "dev/web", "prod/db", 5432)
    v = verdict(w, "dev/web", "prod/db", "TCP", 5432)
    assert [h.allowed for h in v.hops] == [False, False]
    assert ok(w, "node1", "dev/web", 80)  # own pods stay reachable from their host


def test_do_not_track_allow_needs_its_reverse_rule() -> None:
    inbound = "  - {action: Allow, protocol: TCP, destination: {ports: [8080]}}\n"
    one_way = gnp("untracked", f"  selector: role == 'node'\n  doNotTrack: true\n  applyOnForward: true\n"
                                f"  types: [Ingress]\n  ingress:\n{inbound}")
    w = world(NODE_HEPS + one_way)
    v = verdict(w, "tasks", "node1", "TCP", 8080)
    assert not v.allowed and v.hops[-1].reason is Reason.UNTRACKED_REPLY_DENIED
    both = gnp("untracked", f"  selector: role == 'node'\n  doNotTrack: true\n  applyOnForward: true\n"
                             f"  types: [Ingress, Egress]\n  ingress:\n{inbound}"
                             "  egress:\n  - {action: Allow, protocol: TCP, source: {ports: [8080]}}")
    w = world(NODE_HEPS + both)
    v = verdict(w, "tasks", "node1", "TCP", 8080)
    assert v.allowed and v.hops[-1].reason is Reason.UNTRACKED_ALLOWED
    assert not ok(w, "tasks", "node1", 8081)  # the normal (tracked) policy: none, so denied


def test_pre_dnat_deny_applies_to_forwarded_traffic_and_allow_skips_normal_policy() -> None:
    deny = gnp("no-80-from-tasks", "  selector: role == 'node'\n  preDNAT: true\n  applyOnForward: true\n  ingress:\n"
                                   "  - {action: Deny, protocol: TCP, source: {nets: [10.99.0.200/32]},"
                                   " destination: {ports: [80]}}")
    w = world(NODE_HEPS + deny)
    assert not ok(w, "tasks", "dev/web", 80)
    assert ok(w, "prod/db", "dev/web", 80) and ok(w, "tasks", "dev/web", 81)
    allow = gnp("allow-8080", "  selector: role == 'node'\n  preDNAT: true\n  applyOnForward: true\n  ingress:\n"
                              "  - {action: Allow, protocol: TCP, destination: {ports: [8080]}}")
    w = world(NODE_HEPS + allow)
    v = verdict(w, "tasks", "node1", "TCP", 8080)
    assert v.allowed and v.hops[-1].reason is Reason.PRE_DNAT_ALLOWED


def test_a_host_to_its_own_pod_meets_the_pod_ingress_policy_only() -> None:
    isolate = gnp("web-isolated", "  selector: app == 'web'\n  types: [Ingress]")
    w = world(NODE_HEPS + gnp("deny-all", "  selector: has(role)\n  types: [Ingress, Egress]"))
    v = verdict(w, "node1", "dev/web", "TCP", 80)
    assert v.allowed and v.hops == ()  # no host endpoint on the way (node1's egress would deny)
    assert not ok(world(NODE_HEPS + isolate), "node1", "dev/web", 80)


def test_endpoint_to_host_action_drop() -> None:
    drop = ("apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\n"
            "spec: {defaultEndpointToHostAction: Drop}\n---\n")
    w = world(drop)
    assert not ok(w, "dev/web", "node1", 22) and ok(w, "dev/web", "node2", 22)


def test_policies_select_host_endpoints_by_label_and_rules_see_their_addresses() -> None:
    egress = gnp("web-to-nodes", "  selector: app == 'web'\n  types: [Egress]\n  egress:\n"
                                 "  - {action: Allow, destination: {selector: role == 'node'}}")
    w = world(NODE_HEPS + egress)
    assert ok(w, "dev/web", "node2", 22) and not ok(w, "dev/web", "tasks", 22)


def test_external_server_is_a_standalone_host() -> None:
    w = world(HEPS)
    assert not ok(w, "tasks", "dev/web", 80)  # its own egress: no policy
    w = world(hep("tasks-eth0", "tasks", "10.99.0.200", "{role: external}")
              + gnp("tasks-443", "  selector: role == 'external'\n  types: [Ingress]\n  ingress:\n"
                                 "  - {action: Allow, protocol: TCP, source: {selector: app == 'web'},"
                                 " destination: {ports: [443]}}"))
    assert ok(w, "dev/web", "tasks", 443) and not ok(w, "prod/db", "tasks", 443) and not ok(w, "node1", "tasks", 443)


def test_service_account_labels_reach_service_account_selectors() -> None:
    sa = ("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: dev, labels: {team: a}}\n---\n")
    policy = gnp("only-team-a", "  selector: app == 'db'\n  types: [Ingress]\n  ingress:\n"
                                "  - {action: Allow, source: {serviceAccounts: {selector: team == 'a'}}}")
    w = world(sa + policy)
    assert ok(w, "dev/web", "prod/db", 5432)
    w.apply([ServiceAccount("dev", "default")])  # labels removed: the pod no longer matches
    assert not ok(w, "dev/web", "prod/db", 5432)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("spec: {node: node1}", "spec.interfaceName", "interfaceName or at least one"),
        ("spec: {node: node1, interfaceName: 'a b'}", "spec.interfaceName", "not an interface name"),
        ("spec: {interfaceName: eth0}", "spec.node", "is required"),
        ("spec: {node: node1, interfaceName: eth0, expectedIPs: [nope]}", "spec.expectedIPs[0]", "not an IP"),
        ("spec: {node: node1, interfaceName: eth0, profiles: [kns.dev]}", "spec.profiles[0]", "built-in profile"),
    ],
)
def test_invalid_host_endpoints_are_rejected(text: str, field: str, message: str) -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text(f"apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: h}}\n{text}\n", "bad.yaml")
    assert "bad.yaml#1 HostEndpoint h" in str(err.value) and field in str(err.value) and message in str(err.value)


def test_host_options_belong_to_global_policies_only() -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: dev}\n"
                  "spec: {applyOnForward: true}\n", "bad.yaml")
    assert "spec.applyOnForward" in str(err.value) and "GlobalNetworkPolicy" in str(err.value)
