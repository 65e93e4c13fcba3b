"""Session plans: full mesh with one active side per pair, route reflectors, checks."""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address, IPv4Interface

import pytest

from bgp.sessions import BgpNode, SessionPlanError, plan_sessions
from topology.names import PREFIX


def nodes(hosts: int, externals: int = 0, reflectors: int = 0) -> list[BgpNode]:
    out = [BgpNode(f"h{i}", "host", f"ns-h{i}", IPv4Address(f"10.99.0.{i + 1}")) for i in range(hosts)]
    out += [BgpNode(f"x{i}", "external", f"ns-x{i}", IPv4Address(f"10.99.0.{100 + i}")) for i in range(externals)]
    out += [BgpNode(f"rr{i + 1}", "reflector", f"ns-rr{i}", IPv4Address(f"10.99.0.{200 + i}"))
            for i in range(reflectors)]
    return out


@pytest.mark.parametrize("count", [2, 3, 4, 7, 16])
def test_mesh_pairs_every_speaker_once_with_exactly_one_active_side(count: int) -> None:
    plan = plan_sessions(nodes(count - 1, externals=1, reflectors=1))  # reflectors are ignored in a mesh
    assert plan.layout == "mesh" and plan.reflectors == ()
    by_name = {s.name: s for s in plan.speakers}
    assert len(by_name) == count
    for a, b in itertools.combinations(by_name.values(), 2):
        a_to_b = [p for p in a.peers if p.name == b.name]
        b_to_a = [p for p in b.peers if p.name == a.name]
        assert len(a_to_b) == 1 and len(b_to_a) == 1
        assert a_to_b[0].passive != b_to_a[0].passive
        assert a_to_b[0].address == b.local_address
    assert plan.session_count() == count * (count - 1) // 2
    dials = [sum(not p.passive for p in s.peers) for s in plan.speakers]
    assert max(dials) - min(dials) <= 1 or count == 2  # balanced


def test_external_speakers_announce_nothing() -> None:
    plan = plan_sessions(nodes(2, externals=1))
    assert [s.announces for s in plan.speakers] == [True, True, False]
    assert plan.speaker("x0").role == "external"


def test_route_reflector_layout() -> None:
    plan = plan_sessions(nodes(3, externals=1, reflectors=2), layout="route-reflector", hold_time=3)
    assert [r.name for r in plan.reflectors] == ["rr1", "rr2"]
    for speaker in plan.speakers:
        assert [(p.name, p.passive) for p in speaker.peers] == [("rr1", False), ("rr2", False)]
        assert speaker.hold_time == 3
    for rr in plan.reflectors:
        assert rr.cluster_id == IPv4Address("10.99.0.200")
        assert {c.name for c in rr.clients} == {"h0", "h1", "h2", "x0"}
        assert all(c.passive for c in rr.clients)
    assert plan.session_count() == 8


def test_accepts_topology_node_plans_with_interfaces() -> None:
    from topology.model import plan_node

    plan = plan_sessions([plan_node("lab", "h1", "host", "10.99.0.1/24"), plan_node("lab", "h2", "host",
                                                                                   IPv4Interface("10.99.0.2/24"))])
    assert plan.speaker("h1").router_id == IPv4Address("10.99.0.1")
    assert plan.speaker("h1").netns == f"{PREFIX}-lab-h-h1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hold_time": 2}, "hold time 2s is too short"),
        ({"layout": "star"}, "unknown BGP layout 'star'"),
        ({"layout": "route-reflector"}, "needs at least one reflector"),
        ({"asn": 0}, "AS number 0"),
    ],
)
def test_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SessionPlanError, match=message):
        plan_sessions(nodes(2), **kwargs)  # type: ignore[arg-type]


def test_refuses_shared_addresses_and_names() -> None:
    twins = [BgpNode("a", "host", "n1", IPv4Address("10.0.0.1")), BgpNode("a", "host", "n2", IPv4Address("10.0.0.1"))]
    with pytest.raises(SessionPlanError, match="name a is used twice.*share the fabric address 10.0.0.1"):
        plan_sessions(twins)
