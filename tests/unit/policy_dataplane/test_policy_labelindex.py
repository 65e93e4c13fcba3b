"""The label index: incremental updates always equal a from-scratch recomputation, and the work done
follows the size of the change, not of the world."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_dataplane.policy.labelindex import LabelIndex, memberships_from_scratch
from policy_dataplane.policy.model import (
    Action,
    Direction,
    EntityMatch,
    Labels,
    Namespace,
    NetworkSet,
    Pod,
    Policy,
    PolicyKey,
    PolicyKind,
    Rule,
)
from policy_dataplane.policy.selectors import parse
from policy_dataplane.policy.world import World

KEYS = ["app", "env", "tier", "pcns.team"]
VALUES = ["a", "b", "c"]
SELECTOR_TEXTS = [
    'app == "a"', 'app != "a"', 'env in {"a", "b"}', 'env not in {"a"}', "has(tier)", "!has(tier)",
    'app == "a" && env == "b"', 'app == "b" || tier == "c"', 'app starts with "a"', "all()", "global()",
    'pcns.team == "a"', 'pcns.team == "b" && app == "c"', 'projectcalico.org/namespace == "n1"',
    '!(app == "a" && has(env))', 'tier contains "b"',
    # mixed: posting lists and string matches in one selector
    '!has(tier) && app != "b"', 'has(app) || tier starts with "c"', '!(env in {"a", "b"} || has(tier))',
    'tier contains "b" && !has(app)', 'tier ends with "a" && app ends with "b"', '!global() && env not in {"c"}',
]

labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
item_st = st.sampled_from([f"i{n}" for n in range(6)])
sel_st = st.sampled_from(SELECTOR_TEXTS)
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("set"), item_st, labels_st),
        st.tuples(st.just("remove"), item_st, st.none()),
        st.tuples(st.just("add_sel"), sel_st, st.none()),
        st.tuples(st.just("remove_sel"), sel_st, st.none()),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops_st)
def test_index_equals_from_scratch_after_any_sequence(ops: list[tuple[str, str, object]]) -> None:
    index = LabelIndex()
    items: dict[str, dict[str, str]] = {}
    refs: dict[str, int] = {}
    for op, arg, labels in ops:
        if op == "set":
            index.set_item(arg, labels)  # type: ignore[arg-type]
            items[arg] = labels  # type: ignore[assignment]
        elif op == "remove":
            index.remove_item(arg)
            items.pop(arg, None)
        elif op == "add_sel":
            index.add_selector(parse(arg))
            refs[arg] = refs.get(arg, 0) + 1
        elif refs.get(arg):
            index.remove_selector(parse(arg))
            refs[arg] -= 1
    live = [parse(t) for t, n in refs.items() if n > 0]
    expected = memberships_from_scratch(items, live)
    assert index.snapshot() == expected
    for item in items:
        assert index.matches(item) == {sid for sid, members in expected.items() if item in members}


def test_changes_are_reported() -> None:
    index = LabelIndex()
    sel = parse('app == "a"')
    index.add_selector(sel)
    (added,) = index.set_item("x", {"app": "a"})
    assert added.added and added.selector_id == sel.id and added.item == "x"
    (removed,) = index.set_item("x", {"app": "b"})
    assert not removed.added
    assert index.set_item("x", {"app": "b", "other": "1"}) == []


# --- the same through the World (pods, namespaces, network sets, policies) -----------------------------

NS = ["n1", "n2"]
PODS = [("n1", "p1"), ("n1", "p2"), ("n2", "p1")]


def _policy(name: str, applies: str, peer: str) -> Policy:
    return Policy(
        key=PolicyKey(PolicyKind.CALICO_GLOBAL_NETWORK_POLICY, None, name),
        tier="default",
        order=1.0,
        applies_to=parse(applies),
        types=frozenset({Direction.INGRESS}),
        ingress=(Rule(Action.ALLOW, source=EntityMatch(selector=parse(peer))),),
    )


world_ops = st.lists(
    st.one_of(
        st.builds(lambda k, lab: Pod(k[0], k[1], Labels(lab)), st.sampled_from(PODS), labels_st),
        st.builds(lambda n, lab: Namespace(n, Labels(lab)), st.sampled_from(NS), st.dictionaries(
            st.sampled_from(["team"]), st.sampled_from(VALUES), max_size=1)),
        st.builds(lambda n, lab: NetworkSet(None, n, Labels(lab)), st.sampled_from(["s1", "s2"]), labels_st),
        st.builds(_policy, st.sampled_from(["a", "b", "c"]), sel_st, sel_st),
        st.tuples(st.just("delete"), st.sampled_from(
            [("Pod", k) for k in PODS] + [("Namespace", n) for n in NS] + [("Policy", PolicyKey(
                PolicyKind.CALICO_GLOBAL_NETWORK_POLICY, None, x)) for x in "abc"] + [("NetworkSet", (None, "s1"))]
        )),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(world_ops)
def test_world_index_equals_from_scratch(ops: list[object]) -> None:
    world = World()
    for op in ops:
        if isinstance(op, tuple) and op[0] == "delete":
            world.delete([op[1]])  # type: ignore[list-item]
        else:
            world.apply([op])  # type: ignore[list-item]
    assert world.index.snapshot() == world.memberships_from_scratch()


def test_cost_follows_the_change_not_the_world() -> None:
    world = World()
    world.apply([Pod("n", f"p{i}", Labels({"app": f"s{i}", f"egress-{i % 50}": "true"})) for i in range(500)])
    world.apply([_policy(f"pol{i}", f'app == "s{i}"', f'egress-{i} == "true"') for i in range(500)])
    before = world.index.evaluations
    world.label_pod("n", "p7", **{"egress-300": "true"})
    relabel_cost = world.index.evaluations - before
    assert relabel_cost <= 2  # only the selector reading egress-300 (1000 selectors exist)
    assert world.index.contains(parse('egress-300 == "true"').id, ("pod", "n", "p7"))
    before = world.index.evaluations
    world.apply([Pod("n", "new", Labels({"app": "s3", "egress-1": "true"}))])
    assert world.index.evaluations - before <= 5  # selectors filed under its own label pairs
    before = world.index.evaluations
    world.apply([_policy("extra", 'app == "s9"', 'egress-9 == "true"')])
    assert world.index.evaluations - before <= 30  # items carrying the required pairs, not all 501


def test_namespace_relabel_moves_its_pods_only() -> None:
    world = World()
    world.apply([Pod("n1", "a"), Pod("n2", "b"), _policy("p", 'pcns.team == "x"', "all()")])
    sid = parse('pcns.team == "x"').id
    world.apply([Namespace("n1", Labels({"team": "x"}))])
    assert world.index.members(sid) == {("pod", "n1", "a")}
    world.delete([("Namespace", "n1")])
    assert world.index.members(sid) == frozenset()
