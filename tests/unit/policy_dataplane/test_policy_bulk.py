"""Bulk matrices agree with the per-pair oracle on every pair, for random worlds and the scenarios."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_model_helpers import fixture_world

from policy_dataplane.policy.bankgen import BankSpec, bank_egress, bank_objects, egress_label
from policy_dataplane.policy.bulk import matrix
from policy_dataplane.policy.evaluate import verdict
from policy_dataplane.policy.model import (
    Action,
    ContainerPort,
    Direction,
    EntityMatch,
    ExternalHost,
    Labels,
    NamedPort,
    NetworkSet,
    Pod,
    Policy,
    PolicyKey,
    PolicyKind,
    PortRange,
    Rule,
    StagedAction,
    Tier,
)
from policy_dataplane.policy.selectors import parse
from policy_dataplane.policy.world import World


def _assert_matches_oracle(world: World, protocol: str, port: int | None, endpoints: list[object] | None = None,
                           staged_view: bool = False, **icmp: int) -> None:
    m = matrix(world, protocol, port, endpoints, staged_view=staged_view, **icmp)  # type: ignore[arg-type]
    for i, src in enumerate(m.endpoints):
        for j, dst in enumerate(m.endpoints):
            v = verdict(world, src, dst, protocol, port, icmp.get("icmp_type"), icmp.get("icmp_code"))
            expected = v.staged.allowed if staged_view and v.staged else v.allowed
            assert m.allowed[i, j] == expected, f"{src} -> {dst}: bulk {m.allowed[i, j]}, oracle {expected}"


def test_scenarios_agree_with_oracle() -> None:
    for files in (["quarantine.yaml"], ["microseg-base.yaml", "case-6-only-crm-works.yaml"],
                  ["microseg-base.yaml", "case-2-egress-to-task.yaml"], ["bank.yaml", "bank-dry-run.yaml"]):
        world = fixture_world(*files)
        eps = [*sorted(world.pods), "203.0.113.10", "8.8.8.8"]
        endpoints = [world.pods[e] if isinstance(e, tuple) else e for e in eps]
        for protocol, port in (("TCP", 443), ("TCP", 9000), ("TCP", 5432), ("UDP", 53), ("TCP", 8080)):
            _assert_matches_oracle(world, protocol, port, endpoints)  # type: ignore[arg-type]


def test_bank_matrix_is_exactly_the_declared_egress() -> None:
    spec = BankSpec(services=40, namespaces=3, seed=7)
    world = World.from_objects(bank_objects(spec))
    m = matrix(world, "TCP", spec.port)
    names = [p.name for p in m.endpoints if isinstance(p, Pod)]
    edges = bank_egress(spec)
    expected = {(s, t) for s, targets in edges.items() for t in targets}
    got = {(names[i], names[j]) for i, j in zip(*m.allowed.nonzero())}
    assert got == expected
    assert not matrix(world, "TCP", spec.port + 1).allowed.any()
    assert egress_label("s0001") == "bank.com/egress-s-s0001"


# --- random worlds -------------------------------------------------------------------------------------

LABEL_SETS = st.dictionaries(st.sampled_from(["app", "role"]), st.sampled_from(["a", "b"]), max_size=2)
SELECTORS = st.sampled_from(['app == "a"', 'role == "b"', "has(app)", "all()", '!has(role)', 'app != "b"'])
NETS = st.sampled_from([(), (ipaddress.ip_network("10.0.0.0/30"),), (ipaddress.ip_network("10.0.0.4/31"),),
                        (ipaddress.ip_network("192.0.2.0/24"),)])
PORTS = st.sampled_from([(), (PortRange(80, 80),), (PortRange(70, 90), NamedPort("web")), (NamedPort("web"),)])


@st.composite
def entities(draw: st.DrawFn) -> EntityMatch:
    return EntityMatch(
        nets=draw(NETS),
        not_nets=draw(st.sampled_from([(), (ipaddress.ip_network("10.0.0.2/32"),)])),
        selector=draw(st.none() | SELECTORS.map(parse)),
        not_selector=draw(st.none() | SELECTORS.map(parse)),
        ports=draw(PORTS),
        not_ports=draw(st.sampled_from([(), (PortRange(85, 85),)])),
    )


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    return Rule(
        action=draw(st.sampled_from(list(Action))),
        protocol=draw(st.sampled_from([None, 6, 17])),
        not_protocol=draw(st.sampled_from([None, 17])),
        source=draw(entities()),
        destination=draw(entities()),
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    world = World()
    world.apply([Tier("t1", 10, draw(st.sampled_from([Action.DENY, Action.PASS])))])
    for i in range(draw(st.integers(2, 5))):
        ports = (ContainerPort("web", draw(st.sampled_from([80, 85, 8080])), 6),)
        world.apply([Pod("ns", f"p{i}", Labels(draw(LABEL_SETS)), (ipaddress.ip_address(f"10.0.0.{i + 1}"),), ports)])
    world.apply([NetworkSet(None, "outside", Labels(draw(LABEL_SETS)), (ipaddress.ip_network("192.0.2.0/28"),))])
    for i in range(draw(st.integers(0, 4))):
        world.apply([
            Policy(
                key=PolicyKey(PolicyKind.CALICO_GLOBAL_NETWORK_POLICY, None, f"t1.pol{i}" if i % 2 else f"pol{i}"),
                tier="t1" if i % 2 else "default",
                order=draw(st.sampled_from([None, 1.0, 2.0])),
                applies_to=parse(draw(SELECTORS)),
                types=frozenset(draw(st.sets(st.sampled_from(list(Direction)), min_size=1))),
                ingress=tuple(draw(st.lists(rules(), max_size=3))),
                egress=tuple(draw(st.lists(rules(), max_size=3))),
                staged=draw(st.sampled_from([None, None, StagedAction.SET])),
            )
        ])
    return world


@settings(max_examples=120, deadline=None)
@given(worlds(), st.sampled_from([("TCP", 80), ("TCP", 85), ("UDP", 8080), ("TCP", 8080)]), st.booleans())
def test_random_worlds_agree_with_oracle(world: World, flow: tuple[str, int], staged_view: bool) -> None:
    endpoints = [world.pods[k] for k in sorted(world.pods)] + [ExternalHost(ipaddress.ip_address("192.0.2.5")),
                                                               ExternalHost(ipaddress.ip_address("198.51.100.1"))]
    _assert_matches_oracle(world, flow[0], flow[1], endpoints, staged_view=staged_view)  # type: ignore[arg-type]
