"""The incremental compiler gives exactly what a compile from scratch gives, after any change sequence."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_dataplane.dataplane.compile import IncrementalCompiler, compile_hosts, selector_members
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import ContainerPort, Labels, Namespace, Pod
from policy_dataplane.policy.world import World

POLICIES = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: a}
spec:
  podSelector: {matchLabels: {role: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {access: "yes"}}, namespaceSelector: {}}]
    ports: [{port: http}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: quarantine}
spec:
  order: 10
  selector: q == "1"
  ingress: [{action: Log}, {action: Deny}]
  egress: [{action: Deny, destination: {selector: role == "db"}}, {action: Pass}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: b}
spec:
  selector: role == "db"
  ingress:
  - {action: Allow, protocol: TCP, source: {namespaceSelector: env == "prod"}, destination: {ports: [http, 5432]}}
"""
PODS = [(ns, f"p{i}") for i in range(8) for ns in ("a", "b")]
HOSTS = ("h1", "h2", "h3")
LABEL_KEYS = ("role", "access", "q")
LABEL_VALUES = (None, "web", "db", "yes", "1")


def make_world() -> World:
    world = World()
    world.apply([Namespace("a", Labels({"env": "prod"})), Namespace("b", Labels({"env": "dev"}))])
    world.apply(load_text(POLICIES))
    for n, (ns, name) in enumerate(PODS):
        world.apply([Pod(ns, name, Labels({}), (IPv4Address(f"10.1.0.{n + 1}"),),
                         (ContainerPort("http", 8000 + n % 3, 6),))])
    return world


def placement(world: World) -> dict[str, dict[tuple[str, str], str]]:
    out: dict[str, dict[tuple[str, str], str]] = {h: {} for h in HOSTS}
    for n, key in enumerate(PODS):
        if key in world.pods:
            out[HOSTS[n % len(HOSTS)]][key] = f"cali{n:011d}"
    return out


change = st.one_of(
    st.tuples(st.just("label"), st.integers(0, len(PODS) - 1), st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES)),
    st.tuples(st.just("delete"), st.integers(0, len(PODS) - 1), st.none(), st.none()),
    st.tuples(st.just("readd"), st.integers(0, len(PODS) - 1), st.none(), st.none()),
    st.tuples(st.just("ip"), st.integers(0, len(PODS) - 1), st.none(), st.integers(100, 110)),
    st.tuples(st.just("ns"), st.integers(0, 1), st.none(), st.sampled_from(("prod", "dev"))),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(change, min_size=1, max_size=12))
def test_incremental_equals_from_scratch(changes: list[tuple[str, int, str | None, object]]) -> None:
    world = make_world()
    compiler = IncrementalCompiler()
    compiler.compile(world, placement(world))
    for kind, index, key, value in changes:
        play(world, kind, index, key, value)
        got = compiler.compile(world, placement(world))
        assert got == compile_hosts(world, placement(world))


@settings(max_examples=100, deadline=None)
@given(st.lists(change, min_size=1, max_size=12))
def test_selector_members_kept_per_pod_follow_every_change(changes: list[tuple[str, int, str | None, object]]) -> None:
    """The per-pod networks the world keeps for the compiler (`World.item_memo`) never outlive the pod object
    they came from: after any changes, every selector's members are what a world built afresh gives."""
    world = make_world()
    for kind, index, key, value in [("start", 0, None, None), *changes]:
        play(world, kind, index, key, value)
        fresh = World.from_objects([*world.namespaces.values(), *world.pods.values(), *world.policies.values()])
        for sid in world.index.selector_ids():  # every selector's members: the memo holds every pod after this
            selector = world.index.selector(sid)
            assert selector_members(world, selector) == selector_members(fresh, selector), (kind, selector)


def test_a_label_change_recompiles_only_its_host_and_moves_set_members() -> None:
    world = make_world()
    compiler = IncrementalCompiler()
    before = compiler.compile(world, placement(world))
    world.label_pod("a", "p0", role="web")  # p0 lives on h1; now selected by the `web` policy
    after = compiler.compile(world, placement(world))
    assert after["h1"] != before["h1"] and after["h1"].endpoints != before["h1"].endpoints
    assert after["h2"] is before["h2"] and after["h3"] is before["h3"]  # untouched: same objects
    world.label_pod("a", "p2", access="yes")  # a/p2 (on h2) joins the source set of `web`, used on h1
    again = compiler.compile(world, placement(world))
    web_set = next(n for n, p in again["h1"].address_sets.items() if n.startswith("s-") and
                   IPv4Address("10.1.0.5") in {m.network_address for m in p})
    assert not after["h1"].address_sets[web_set]
    assert again["h1"].policies is after["h1"].policies  # h1 not recompiled: only its set moved
    assert again == compile_hosts(world, placement(world))


# --- policy changes (Felix's active-rules calculation) ------------------------------------------------------
POLICY_VARIANTS = [  # (key of the policy it edits, YAML); several versions of each key
    ("web", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: a}
spec:
  podSelector: {matchLabels: {role: web}}
  ingress: [{from: [{podSelector: {matchLabels: {access: "yes"}}}], ports: [{port: 5432}]}]
"""),
    ("web", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: a}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {env: dev}}}]}]
  egress: [{to: [{podSelector: {matchLabels: {q: "1"}}}], ports: [{port: http}]}]
"""),
    ("quarantine", """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: quarantine}
spec:
  order: 300
  selector: q == "1" || role == "web"
  ingress: [{action: Deny, source: {nets: [10.9.0.0/16]}}, {action: Allow}]
"""),
    ("quarantine", """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: quarantine}
spec:
  order: 1
  selector: access == "yes"
  egress: [{action: Allow, protocol: TCP, destination: {selector: role == "db", ports: [http]}}]
"""),
    ("new", """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: new}
spec:
  order: 50
  selector: all()
  types: [Ingress]
  ingress: [{action: Pass, source: {selector: role == "web"}}, {action: Deny}]
"""),
    ("new", """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: new}
spec:
  order: 50
  selector: role == "nothing-has-this"
  ingress: [{action: Deny}]
"""),
    ("db", """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: b}
spec:
  selector: role == "db"
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: access == "yes"}, destination: {ports: [http]}}
"""),
]
POLICY_VARIANTS.append(("staged", """
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: staged}
spec:
  order: 5
  selector: role == "web"
  ingress: [{action: Deny, source: {selector: access == "yes" && role != "db"}}]
"""))  # registers selectors, compiles to nothing; `db`'s variant may take the same one up later
POLICY_KEYS = sorted({k for k, _ in POLICY_VARIANTS})
ORIGINAL = {obj.name.split("/")[-1]: obj for obj in load_text(POLICIES)}  # type: ignore[union-attr]

mixed_change = st.one_of(
    change,
    st.tuples(st.just("policy"), st.integers(0, len(POLICY_VARIANTS) - 1), st.none(), st.none()),
    st.tuples(st.just("unpolicy"), st.integers(0, len(POLICY_KEYS) - 1), st.none(), st.none()),
)


def play(world: World, kind: str, index: int, key: str | None, value: object) -> None:
    if kind == "policy":
        world.apply(load_text(POLICY_VARIANTS[index][1]))
        return
    if kind == "unpolicy":
        gone = [p for p in world.policies.values() if p.name.split("/")[-1] == POLICY_KEYS[index]]
        world.delete(gone)
        return
    ns, name = PODS[index]
    pod = world.pods.get((ns, name))
    if kind == "label" and pod is not None:
        world.label_pod(ns, name, **{key: value})  # type: ignore[dict-item]
    elif kind == "delete":
        world.delete([("Pod", (ns, name))])
    elif kind == "readd" and pod is None:
        world.apply([Pod(ns, name, Labels({"role": "web"}), (IPv4Address(f"10.1.0.{index + 1}"),))])
    elif kind == "ip" and pod is not None:
        world.apply([Pod(ns, name, pod.labels, (IPv4Address(f"10.1.1.{value}"),), pod.ports)])
    elif kind == "ns":
        world.apply([Namespace(("a", "b")[index], Labels({"env": str(value)}))])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(mixed_change, min_size=1, max_size=3), min_size=1, max_size=10))
def test_incremental_equals_from_scratch_with_policy_changes(batches: list[list[tuple[str, int, str | None, object]]]
                                                             ) -> None:
    """Each batch is what one compile follows (the controller coalesces revisions): policies, labels and pods
    changed together must still give exactly a fresh compile."""
    world = make_world()
    compiler = IncrementalCompiler()
    compiler.compile(world, placement(world))
    for n, batch in enumerate(batches):
        for kind, index, key, value in batch:
            play(world, kind, index, key, value)
        deferred = n % 2 == 1  # as the dataplane compiles: its bookkeeping settled after the kernel write
        got = compiler.compile(world, placement(world), settle=not deferred)
        assert got == compile_hosts(world, placement(world))
        if deferred:
            compiler.settle()


def test_a_policy_change_recompiles_only_the_hosts_of_the_endpoints_it_selects() -> None:
    world = make_world()
    world.label_pod("b", "p1", role="db")  # b/p1 lives on h1 (index 3 of PODS)
    compiler = IncrementalCompiler()
    before = compiler.compile(world, placement(world))
    narrow = POLICY_VARIANTS[6][1]  # `db` (b): selects role == db, i.e. b/p1 only
    world.apply(load_text(narrow))
    after = compiler.compile(world, placement(world))
    assert after == compile_hosts(world, placement(world))
    assert compiler.last_recompiled == {"h1"}
    assert after["h2"] is before["h2"] and after["h3"] is before["h3"]  # untouched: the same objects
    # a policy selecting nothing anywhere touches no host
    world.apply(load_text(POLICY_VARIANTS[5][1]))
    again = compiler.compile(world, placement(world))
    assert compiler.last_recompiled == set() and all(again[h] is after[h] for h in HOSTS)
    # deleting it again: still nothing; deleting `web` (a/*, role == web: nobody) is nothing too
    world.delete([p for p in world.policies.values() if p.name.endswith("new")])
    compiler.compile(world, placement(world))
    assert compiler.last_recompiled == set()


def test_editing_a_policy_drops_the_sets_and_chains_no_endpoint_needs() -> None:
    world = make_world()
    for ns, name in PODS[:4]:
        world.label_pod(ns, name, role="web", q="1")
    compiler = IncrementalCompiler()
    compiler.compile(world, placement(world))
    world.apply(load_text(POLICY_VARIANTS[3][1]))  # quarantine now selects access == yes: nobody
    got = compiler.compile(world, placement(world))
    assert got == compile_hosts(world, placement(world))
    assert not any("quarantine" in p.name for prog in got.values() for p in prog.policies.values())
    assert ORIGINAL  # the fixture's policies parse


STAGED_THEN_ENFORCED = """
apiVersion: projectcalico.org/v3
kind: {kind}
metadata: {{name: from-db}}
spec:
  order: 5
  selector: role == "web"
  ingress: [{{action: Deny, source: {{selector: tier == "db"}}}}]
"""


def test_a_selector_a_staged_policy_registered_first_still_follows_its_pods() -> None:
    """A staged policy registers its selectors (its verdicts are traced) but compiles to nothing. When an
    enforced policy takes the same selector up later, the set it makes must still lose a pod that leaves it."""
    world = make_world()
    world.label_pod("a", "p0", role="web")
    world.label_pod("b", "p0", tier="db")
    compiler = IncrementalCompiler()
    compiler.compile(world, placement(world))
    world.apply(load_text(STAGED_THEN_ENFORCED.format(kind="StagedGlobalNetworkPolicy")))
    compiler.compile(world, placement(world))
    world.apply(load_text(STAGED_THEN_ENFORCED.format(kind="GlobalNetworkPolicy")))
    assert compiler.compile(world, placement(world)) == compile_hosts(world, placement(world))
    world.label_pod("b", "p0", tier=None)  # leaves the source set
    assert compiler.compile(world, placement(world)) == compile_hosts(world, placement(world))


def test_a_compiler_that_fell_behind_the_change_log_compares_everything() -> None:
    from policy_dataplane.policy.changelog import ChangeLog

    world = make_world()
    world.pod_log, world.policy_log = ChangeLog(limit=4), ChangeLog(limit=4)
    compiler = IncrementalCompiler()
    compiler.compile(world, placement(world))
    for n, (ns, name) in enumerate(PODS):  # more changes than the logs keep
        world.label_pod(ns, name, role=("web", "db")[n % 2], access="yes")
    world.apply(load_text(POLICY_VARIANTS[6][1]))
    assert world.pod_log.since(0) is None
    assert compiler.compile(world, placement(world)) == compile_hosts(world, placement(world))
