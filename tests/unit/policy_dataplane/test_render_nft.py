"""nft/render.py, nft/nftnl.py and iptables/render.py on hand-built HostPrograms (pure: no kernel)."""

from __future__ import annotations

import socket
import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from hypothesis import given
from hypothesis import strategies as st

from policy_dataplane.dataplane.hostprogram import (
    Dir,
    EndpointProgram,
    HostProgram,
    PolicyProgram,
    RuleProgram,
    SideMatch,
    TierProgram,
    Verdict,
    policy_chain,
)
from policy_dataplane.dataplane.iptables.render import render_iptables_diff, render_iptables_full, rule_bodies
from policy_dataplane.dataplane.nft.nftnl import ElementChange, encode_batch
from policy_dataplane.dataplane.nft.render import (
    address_elements,
    address_intervals,
    element_changes,
    interval_set_elements,
    render_diff,
    render_full,
    render_rule,
)

WEB = PolicyProgram("ns/web", Dir.INGRESS, (
    RuleProgram(Verdict.LOG),
    RuleProgram(Verdict.ALLOW, protocol=6, source=SideMatch(members="s-1"),
                destination=SideMatch(ports=((80, 80), (9000, 9010)), named_ports="p-1")),
    RuleProgram(Verdict.DENY, protocol=17, destination=SideMatch(not_ports=((53, 53),))),
))
CHAIN = policy_chain("ns/web", Dir.INGRESS)


def ip(text: str) -> int:
    return int(IPv4Address(text))


def program(members: frozenset[IPv4Network] = frozenset({IPv4Network("10.0.0.1/32")}), pods: int = 1) -> HostProgram:
    endpoints = {f"cali{i}": EndpointProgram(f"ns/p{i}", f"cali{i}", ingress=(TierProgram("default", (CHAIN,)),))
                 for i in range(pods)}
    return HostProgram({"s-1": members}, {"p-1": frozenset({(IPv4Address("10.0.0.9"), 6, 8080)})},
                       {CHAIN: WEB}, endpoints)


def test_full_program_fails_closed_and_accepts_established_first() -> None:
    text = render_full(program())
    lines = text.splitlines()
    assert lines[:3] == ["add table inet npl", "delete table inet npl", "add table inet npl"]  # atomic replace
    forward = [line for line in lines if line.startswith("add rule inet npl forward")]
    assert forward[0].endswith("ct state established,related accept")
    assert 'iifname "cali*" jump from-wl' in forward[-2] and 'oifname "cali*" jump to-wl' in forward[-1]
    assert any("from-wl counter" in line and line.endswith('drop comment "unknown workload interface"')
               for line in lines)
    assert 'add element inet npl fw-dispatch { "cali0" : goto fw-cali0 }' in lines
    # the map entry (the interface becomes reachable) comes after its chains are filled
    assert lines.index('add element inet npl tw-dispatch { "cali0" : goto tw-cali0 }') > \
        max(i for i, line in enumerate(lines) if line.startswith("add rule inet npl tw-cali0"))


def test_rule_rendering_splits_ports_and_named_ports() -> None:
    log, allow, deny = (render_rule(WEB, i, r) for i, r in enumerate(WEB.rules))
    assert log == [f'counter log prefix "L {CHAIN} 0" group 1 comment "ns/web r0"']
    assert len(allow) == 2  # numeric ports OR the named-port set
    assert "th dport { 80, 9000-9010 }" in allow[0] and "ip saddr @s-1" in allow[0]
    assert "ip daddr . meta l4proto . th dport @p-1" in allow[1]
    assert all(line.endswith('meta mark set meta mark or 0x10000 return comment "ns/web r1"') for line in allow)
    assert deny == [f'meta l4proto 17 th dport != 53 counter log prefix "D {CHAIN} 2" group 1 drop '
                    'comment "ns/web r2"']


def test_diff_of_equal_programs_is_empty_and_label_change_is_one_element_line() -> None:
    assert render_diff(program(), program()) == ""
    grown = program(frozenset({IPv4Network("10.0.0.1/32"), IPv4Network("10.0.0.3/32")}))
    assert render_diff(program(), grown) == "add element inet npl s-1 { 10.0.0.3 }\n"
    assert element_changes(program(), grown) == [ElementChange("s-1", True, ((ip("10.0.0.3"), ip("10.0.0.3")),))]
    shrunk = program(frozenset())
    assert element_changes(grown, shrunk) == [
        ElementChange("s-1", False, ((ip("10.0.0.1"), ip("10.0.0.1")), (ip("10.0.0.3"), ip("10.0.0.3"))))]
    assert element_changes(program(), program(pods=2)) is None  # a new endpoint needs chains: nft


def test_a_member_between_two_ranges_replaces_them_with_one() -> None:
    """Adjacent pod addresses are one range in the kernel: a pod joining the gap deletes both ranges and adds
    the merged one, deletions first, in one transaction."""
    sides = program(frozenset(IPv4Network(f"10.0.0.{i}/32") for i in (1, 2, 4, 5)))
    filled = program(frozenset(IPv4Network(f"10.0.0.{i}/32") for i in (1, 2, 3, 4, 5)))
    assert render_diff(sides, filled) == ("delete element inet npl s-1 { 10.0.0.1-10.0.0.2, 10.0.0.4/31 }\n"
                                          "add element inet npl s-1 { 10.0.0.1-10.0.0.5 }\n")
    assert element_changes(sides, filled) == [
        ElementChange("s-1", False, ((ip("10.0.0.1"), ip("10.0.0.2")), (ip("10.0.0.4"), ip("10.0.0.5")))),
        ElementChange("s-1", True, ((ip("10.0.0.1"), ip("10.0.0.5")),))]


def test_interval_set_elements_merge_neighbours_and_overlaps() -> None:
    members = [IPv4Network(n) for n in ("10.0.0.0/24", "10.0.0.7/32", "10.0.1.0/32", "10.0.1.1/32",
                                        "10.0.2.4/32", "10.0.2.5/32", "10.0.2.6/32", "10.0.2.7/32", "10.0.3.9/32")]
    assert interval_set_elements(members) == ["10.0.0.0-10.0.1.1", "10.0.2.4/30", "10.0.3.9"]
    assert interval_set_elements([IPv4Network("0.0.0.0/0")]) == ["0.0.0.0/0"]
    assert interval_set_elements([]) == []


@given(st.sets(st.integers(0, 300), max_size=60), st.sets(st.tuples(st.integers(0, 300), st.integers(28, 32)), max_size=4))
def test_interval_set_elements_cover_exactly_the_members(hosts: set[int], blocks: set[tuple[int, int]]) -> None:
    members = [IPv4Network(f"10.0.{h // 256}.{h % 256}/32") for h in hosts]
    members += [IPv4Network(f"10.0.{b // 256}.{b % 256}/{length}", strict=False) for b, length in blocks]
    covered = {a for n in members for a in range(int(n.network_address), int(n.broadcast_address) + 1)}
    ranges = address_intervals(members)
    assert {a for first, last in ranges for a in range(first, last + 1)} == covered
    assert all(last + 1 < next_first for (_, last), (next_first, _) in zip(ranges, ranges[1:]))  # merged
    for text, (first, last) in zip(interval_set_elements(members), ranges):
        if "-" in text:
            low, high = text.split("-")
            assert (ip(low), ip(high)) == (first, last)
        else:
            net = IPv4Network(text)
            assert (int(net.network_address), int(net.broadcast_address)) == (first, last)


def test_removing_an_endpoint_unhooks_it_before_deleting_its_chains() -> None:
    lines = render_diff(program(pods=2), program(pods=1)).splitlines()
    assert sorted(lines[:2]) == ['delete element inet npl fw-dispatch { "cali1" }',
                                 'delete element inet npl tw-dispatch { "cali1" }']
    assert sorted(lines[2:]) == ["delete chain inet npl fw-cali1", "delete chain inet npl tw-cali1"]


def test_a_policy_edit_flushes_and_refills_only_its_chain() -> None:
    edited = replace(program(), policies={CHAIN: replace(WEB, rules=WEB.rules[:1])})
    lines = render_diff(program(), edited).splitlines()
    assert lines[0] == f"flush chain inet npl {CHAIN}"
    assert all(line.split()[4] == CHAIN for line in lines) and len(lines) == 3  # flush, header, the Log rule


def test_overlapping_members_are_collapsed_for_interval_sets() -> None:
    members = [IPv4Network("10.0.0.0/24"), IPv4Network("10.0.0.7/32"), IPv4Network("10.0.1.1/32")]
    assert address_elements(members) == ["10.0.0.0/24", "10.0.1.1"]


def test_netlink_batch_encodes_intervals_like_nft() -> None:
    data, acked = encode_batch([ElementChange("s-1", False, ((ip("10.0.0.1"), ip("10.0.0.1")),)),
                                ElementChange("s-1", True, ((ip("10.0.0.0"), ip("10.0.0.255")),)),
                                ElementChange("s-2", True, ())], first_seq=5)
    assert acked == 2  # the empty change is left out
    messages, offset = [], 0
    while offset < len(data):
        length, kind, flags, seq, _ = struct.unpack_from("=IHHII", data, offset)
        messages.append((kind, flags, seq, data[offset + 16:offset + length]))
        offset += length
    assert [m[0] for m in messages] == [0x10, (10 << 8) | 14, (10 << 8) | 12, 0x11]
    assert [m[2] for m in messages] == [5, 6, 7, 8]
    add_body = messages[2][3]
    assert socket.inet_aton("10.0.0.0") in add_body and socket.inet_aton("10.0.1.0") in add_body  # end = last + 1
    assert b"s-1\0" in add_body and b"npl\0" in add_body
    assert messages[2][1] & 0x4 and messages[2][1] & 0x400  # ack, create


def test_iptables_layout_and_multiport_split() -> None:
    text = render_iptables_full(program())
    assert "-A npl-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" in text
    assert "-A npl-to-wl -o cali0 -g npl-tw-cali0" in text
    assert '-A npl-to-wl -m comment --comment "unknown workload interface" -j DROP' in text
    many = RuleProgram(Verdict.ALLOW, protocol=6, destination=SideMatch(ports=tuple((p, p) for p in range(1, 21))))
    bodies = rule_bodies(WEB, 0, many)
    assert len(bodies) == 4  # 20 ports: two multiport rules, each a mark and a return
    assert render_iptables_diff(program(), program()) == ""
    diff = render_iptables_diff(program(pods=2), program(pods=1))
    assert ":npl-to-wl - [0:0]" in diff and "-X npl-tw-cali1" in diff
