"""Programming behaviour: incremental = from scratch, one transaction, bad programs change nothing, re-sync
after a restart keeps established connections, fail closed for a pod added later."""

from __future__ import annotations

import socket
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from dataplane_lab import HOSTS, LAB, QUARANTINE, DataplaneLab, assert_matches_oracle

from policy_dataplane.dataplane.hostprogram import HostProgram, RuleProgram, SideMatch, Verdict
from policy_dataplane.dataplane.lab_dataplane import Dataplane
from policy_dataplane.dataplane.nft.nft_filter import NftablesHostFilter, normalized_listing
from policy_dataplane.dataplane.nft.nftnl import NetlinkRefused
from policy_dataplane.dataplane.nft.render import render_diff
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import Labels, Namespace, Pod
from topology import names
from topology.engines import get_engine
from topology.netns import CommandFailed
from traffic.model import Protocol

pytestmark = pytest.mark.root
TCP, UDP, ICMP = Protocol.TCP, Protocol.UDP, Protocol.ICMP

POLICIES = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: ns1}
spec:
  podSelector: {matchLabels: {role: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {access: "true"}}, namespaceSelector: {}}]
    ports: [{port: 8080}]
---
""" + QUARANTINE


def isolate_p1(lab: DataplaneLab) -> tuple[NftablesHostFilter, HostProgram, dict[str, object]]:
    """POLICIES applied and ns1/p1 made a `web` pod: (h1's filter, its applied program, its table)."""
    lab.apply(POLICIES)
    lab.label("ns1/p1", role="web")
    host = lab.dp.host("h1")
    assert host.applied is not None
    return host, host.applied, normalized_listing(host.netns)


def listings() -> dict[str, object]:
    return {h: normalized_listing(names.host_netns(LAB, h)) for h in HOSTS}


def test_incremental_changes_equal_a_program_from_scratch(lab: DataplaneLab) -> None:
    lab.sync()
    steps = [
        lambda: lab.world.apply(load_text(POLICIES)),
        lambda: lab.world.label_pod("ns1", "p1", role="web"),
        lambda: lab.world.label_pod("ns0", "p0", access="true"),
        lambda: lab.world.label_pod("ns1", "p3", role="web", access="true"),
        lambda: lab.world.label_pod("ns0", "p2", quarantine="true"),
        lambda: lab.world.apply([Namespace("ns0", Labels({"team": "c"}))]),
        lambda: lab.world.delete([("Pod", ("ns0", "p4"))]),
        lambda: lab.world.label_pod("ns0", "p0", access=None),
        lambda: lab.world.delete([("GlobalNetworkPolicy", "quarantine")]),
    ]
    for step in steps:
        step()
        report = lab.sync()
        assert all(r.mode in ("elements", "diff", "none") for r in report.hosts.values())
        incremental = listings()
        fresh = Dataplane(LAB)  # a restarted agent: nothing remembered, full replace
        fresh.resync(lab.world, lab.placement())
        assert listings() == incremental
    assert_matches_oracle(lab, [(TCP, 8080), (ICMP, 0)])


def test_a_label_change_moves_only_set_elements(lab: DataplaneLab) -> None:
    lab.apply(POLICIES)
    lab.label("ns1/p1", role="web")
    host = lab.dp.host("h1")
    before = host.applied
    assert before is not None
    assert host.plan(lab.dp.compile(lab.world, lab.placement())["h1"]).mode == "none"
    lab.world.label_pod("ns0", "p0", access="true")
    after = lab.dp.compile(lab.world, lab.placement())["h1"]
    plan = host.plan(after)
    assert plan.mode == "elements" and plan.elements[-1].add  # ranges it joins are replaced: deletions first
    added = {a for c in plan.elements if c.add for first, last in c.ranges for a in range(first, last + 1)}
    removed = {a for c in plan.elements if not c.add for first, last in c.ranges for a in range(first, last + 1)}
    assert added - removed == {int(IPv4Address(lab.endpoints["ns0/p0"].ip))}
    text = render_diff(before, after)  # what nft -f would get: element lines too
    assert all(line.startswith(("add element", "delete element")) for line in text.strip().splitlines())
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, False)])  # planned, not applied yet
    report = lab.sync()
    assert report.hosts["h1"].mode == "elements" and report.hosts["h2"].mode == "none"  # no web pod on h2
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, True), ("ns0/p2", "ns1/p1", TCP, 8080, False)])
    lab.label("ns0/p0", access=None)
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, False)])
    fresh = Dataplane(LAB)
    incremental = listings()
    fresh.resync(lab.world, lab.placement())
    assert listings() == incremental  # netlink updates leave exactly what nft would have written


def test_a_refused_netlink_batch_changes_nothing(lab: DataplaneLab) -> None:
    host, good, before = isolate_p1(lab)
    name = next(n for n in good.address_sets if n.startswith("s-"))
    ghost = "s-0000000000000000"  # a set the kernel does not have: the whole batch must be rolled back
    host.applied = replace(good, address_sets={**good.address_sets, ghost: frozenset()})
    bad = replace(good, address_sets={**good.address_sets, ghost: frozenset({IPv4Network("10.9.9.9/32")}),
                                      name: good.address_sets[name] | {IPv4Network("10.9.9.8/32")}})
    with pytest.raises(NetlinkRefused):
        host.apply(bad)
    assert normalized_listing(host.netns) == before


def test_a_bad_program_leaves_the_running_one_untouched(lab: DataplaneLab) -> None:
    host, good, before = isolate_p1(lab)
    chain, policy = next(iter(good.policies.items()))
    broken_rule = RuleProgram(Verdict.ALLOW, protocol=6, destination=SideMatch(ports=((70000, 70000),)))
    bad = replace(good, policies={**good.policies, chain: replace(policy, rules=(broken_rule,))},
                  address_sets={**good.address_sets, "s-new": frozenset()})
    with pytest.raises(CommandFailed):
        host.apply(bad)
    assert host.applied is good
    assert normalized_listing(host.netns) == before
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, False), ("ns0/p0", "ns0/p2", TCP, 8080, True)])
    with pytest.raises(ValueError):  # a dangling reference never reaches nft
        host.apply(replace(good, policies={**good.policies, chain: replace(policy, rules=(
            RuleProgram(Verdict.ALLOW, source=SideMatch(members="s-missing")),))}))


def _connect(lab: DataplaneLab, src: str, dst: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A kernel TCP connection from pod `src` to pod `dst` (both sockets returned, connected)."""
    server = get_engine().call_in(lab.endpoints[dst].netns, lambda: socket.create_server(("0.0.0.0", port)))
    client = get_engine().call_in(lab.endpoints[src].netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    client.settimeout(2)
    client.connect((str(lab.endpoints[dst].ip), port))
    server.settimeout(2)
    accepted, _ = server.accept()
    server.close()
    accepted.settimeout(2)
    return client, accepted


def _exchange(client: socket.socket, server: socket.socket) -> None:
    client.sendall(b"ping")
    assert server.recv(4) == b"ping"
    server.sendall(b"pong")
    assert client.recv(4) == b"pong"


def test_resync_after_restart_keeps_established_connections(lab: DataplaneLab) -> None:
    lab.sync()
    client, server = _connect(lab, "ns0/p4", "ns1/p1", 7001)  # cross host
    local_client, local_server = _connect(lab, "ns0/p0", "ns1/p1", 7002)  # same host
    try:
        lab.apply(POLICIES)
        lab.label("ns1/p1", role="web")  # p1 is now isolated: no new connection on 7001
        lab.expect([("ns0/p4", "ns1/p1", TCP, 7001, False)])
        _exchange(client, server)
        before = listings()
        restarted = Dataplane(LAB)
        report = restarted.resync(lab.world, lab.placement())
        assert {r.mode for r in report.hosts.values()} == {"full"}
        assert listings() == before
        _exchange(client, server)
        _exchange(local_client, local_server)
        lab.expect([("ns0/p4", "ns1/p1", TCP, 7001, False), ("ns0/p0", "ns1/p1", TCP, 7002, False)])
    finally:
        for s in (client, server, local_client, local_server):
            s.close()


def test_a_pod_added_later_has_no_network_until_its_filter_is_in(lab: DataplaneLab) -> None:
    lab.world.delete([("Pod", ("ns1", "p3"))])
    lab.sync()
    lab.expect([("ns1/p3", "ns0/p4", TCP, 8080, False), ("ns0/p4", "ns1/p3", TCP, 8080, False)])
    lab.world.apply([Pod("ns1", "p3", Labels({"app": "p3"}), (IPv4Address(str(lab.endpoints["ns1/p3"].ip)),))])
    report = lab.sync()
    assert report.changed_hosts == ["h2"]
    lab.expect([("ns1/p3", "ns0/p4", TCP, 8080, True), ("ns0/p4", "ns1/p3", TCP, 8080, True)])


def test_saved_state_lets_a_new_process_send_diffs_and_survive_a_reset(lab: DataplaneLab, tmp_path: Path) -> None:
    lab.apply(POLICIES)
    lab.label("ns1/p1", role="web")
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, False)])  # counted by the tier-end drop
    state = tmp_path / "dataplane.state"
    lab.dp.save_state(state)
    later = Dataplane(LAB)  # the next CLI command
    assert later.load_state(state)
    lab.world.label_pod("ns0", "p0", access="true")
    report = later.sync(lab.world, lab.placement())
    assert report.hosts["h1"].mode == "elements"
    counters = later.counters(HOSTS)
    assert counters.default_denied()["ns1/p1 ingress"] == 1  # not reset: no table was replaced
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, True)])
    later.save_state(state)
    lab.dp.remove("h1")  # the host lost its table (a restart) since the state was saved
    again = Dataplane(LAB)
    assert again.load_state(state)
    lab.world.label_pod("ns0", "p2", access="true")
    report = again.sync(lab.world, lab.placement())
    assert report.hosts["h1"].mode == "full"  # the diff failed atomically, then the whole table was written
    lab.expect([("ns0/p2", "ns1/p1", TCP, 8080, True), ("ns1/p3", "ns1/p1", TCP, 8080, False)])
