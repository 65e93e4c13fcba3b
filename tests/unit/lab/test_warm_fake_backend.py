"""The warm policy sync (lab.warm) and the apply helpers (lab.apply) against a lab whose dataplane is a
backend registered by the test, in memory: every check compares what the "kernel" holds with a compile
from scratch of the store. Covers following the store incrementally, a revision gap (another process
changed the lab), a pod moved to another host without its document changing, and deletions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from lab import apply as lab_apply
from lab import pipeline, warm
from lab.apply import apply_sources, delete_keys, key_of, label
from lab.labfile import parse_lab
from lab.runtime import LabRuntime
from lab.store import ObjectKey, Placement
from lab.stored_world import world_of
from policy_dataplane.dataplane import backends as backend_registry
from policy_dataplane.dataplane.backends import register_backend
from policy_dataplane.dataplane.compile import compile_hosts
from policy_dataplane.dataplane.fake.backend import FakeBackend, FakeKernel
from policy_dataplane.dataplane.hostprogram import HostProgram
from topology import names

LAB = "wf1"
SPEC = {
    "name": LAB, "hosts": 2, "dataplane": "memory",
    "namespaces": [{"name": "a", "labels": {"env": "a"}}],
    "pods": [{"name": "web", "namespace": "a", "host": "node1", "labels": {"role": "web"}},
             {"name": "db", "namespace": "a", "host": "node2", "labels": {"role": "db"}},
             {"name": "api", "namespace": "a", "host": "node1", "labels": {"role": "api"}}],
}
DB_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: a}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{podSelector: {matchLabels: {role: web}}}]}]
"""


@dataclass
class RecordingFabric:
    """Stands in for the kernel side of pods (namespaces, veths, routes): records what it was asked."""

    calls: list[str]

    def add_pods(self, plans: list[Any], progress: Any = None) -> None:
        self.calls.append("add " + " ".join(sorted(p.key for p in plans)))

    def remove_pods(self, plans: list[Any]) -> None:
        self.calls.append("remove " + " ".join(sorted(p.key for p in plans)))

    def update_announcements(self, hosts: set[str]) -> None:
        pass

    def reload_responder(self, targets: list[Any]) -> None:
        pass


@dataclass
class FakeLab:
    runtime: LabRuntime
    kernel: FakeKernel
    fabric_calls: list[str]

    def expected(self) -> dict[str, HostProgram]:
        """What a from-scratch compile of the store gives, per host namespace."""
        placement = {h: dict(p) for h, p in self.runtime.placement().items()}
        programs = compile_hosts(world_of(self.runtime), placement)
        return {names.host_netns(LAB, h): p for h, p in programs.items()}

    def warm_world(self) -> object:
        return warm._WARM[LAB].world


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLab]:
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    kernel, calls = FakeKernel(), []
    monkeypatch.setattr(backend_registry, "_BACKENDS", dict(backend_registry._BACKENDS))
    register_backend("memory", lambda: FakeBackend(kernel))  # the one line a new backend needs
    monkeypatch.setattr(lab_apply, "Fabric", lambda runtime: RecordingFabric(calls))
    runtime = pipeline._record(parse_lab(SPEC, "test", tmp_path), names.LabPaths.for_lab(LAB))
    pipeline._allocate(runtime)
    try:
        warm.sync(runtime)
        yield FakeLab(runtime, kernel, calls)
    finally:
        warm.forget(LAB)
        runtime.close()


def write_elsewhere(lab: FakeLab, key: ObjectKey, labels: dict[str, str]) -> None:
    """A change written by another process: the store moves on, this process's warm state does not."""
    doc = lab.runtime.store.get_object(key)
    assert doc is not None
    with lab.runtime.store.transaction():
        lab.runtime.store.put_object(key, {**doc, "metadata": {**doc["metadata"], "labels": labels}})


def test_the_lab_comes_up_with_every_host_programmed(lab: FakeLab) -> None:
    assert lab.kernel.tables == lab.expected()
    assert set(lab.kernel.tables) == {names.host_netns(LAB, "node1"), names.host_netns(LAB, "node2")}


def test_apply_and_label_follow_the_store_incrementally(lab: FakeLab) -> None:
    world = lab.warm_world()
    report = apply_sources(lab.runtime, [("db.yaml", DB_POLICY)])
    assert report.created == ["NetworkPolicy a/db"]
    assert lab.kernel.tables == lab.expected()
    assert lab.kernel.changes[-1].mode == "diff"
    label(lab.runtime, ObjectKey("Pod", "a", "api"), {"role": "web"})  # api may now reach db
    assert lab.kernel.tables == lab.expected()
    assert lab.warm_world() is world  # followed, not rebuilt
    db_host = names.host_netns(LAB, "node2")
    assert lab.kernel.changes[-1].netns == db_host  # only db's host enforces a set that changed


def test_a_revision_gap_rebuilds_from_the_store(lab: FakeLab) -> None:
    apply_sources(lab.runtime, [("db.yaml", DB_POLICY)])
    world = lab.warm_world()
    write_elsewhere(lab, ObjectKey("Pod", "a", "api"), {"role": "web"})
    write_elsewhere(lab, ObjectKey("Pod", "a", "web"), {"role": "none"})  # two revisions it did not follow
    warm.sync(lab.runtime)
    assert lab.warm_world() is not world
    assert lab.kernel.tables == lab.expected()
    web_ip = next(p.ip for p in lab.runtime.store.placements() if p.name == "web")
    db_sets = lab.kernel.tables[names.host_netns(LAB, "node2")].address_sets.values()
    assert not any(any(str(net.network_address) == web_ip for net in s) for s in db_sets)


def test_a_pod_moved_to_another_host_moves_its_endpoint_and_address(lab: FakeLab) -> None:
    apply_sources(lab.runtime, [("db.yaml", DB_POLICY)])
    web = next(p for p in lab.runtime.store.placements() if p.name == "web")
    moved_ip = str(IPv4Address(web.ip) + 200)  # a pool address no pod has
    with lab.runtime.store.transaction():  # placement only: the pod's document is unchanged
        lab.runtime.store.put_placement(Placement(web.namespace, web.name, "node2", moved_ip))
    warm.sync(lab.runtime)
    assert lab.kernel.tables == lab.expected()
    node1, node2 = (lab.kernel.tables[names.host_netns(LAB, h)] for h in ("node1", "node2"))
    assert "a/web" in {e.key for e in node2.endpoints.values()} - {e.key for e in node1.endpoints.values()}
    allowed = {str(net.network_address) for s in node2.address_sets.values() for net in s}
    assert moved_ip in allowed and web.ip not in allowed  # db's policy follows web's new address


def test_deleting_a_policy_and_a_pod_removes_them_from_the_kernel(lab: FakeLab) -> None:
    apply_sources(lab.runtime, [("db.yaml", DB_POLICY)])
    assert any(p.policies for p in lab.kernel.tables.values())
    delete_keys(lab.runtime, [ObjectKey("NetworkPolicy", "a", "db")])
    assert not any(p.policies for p in lab.kernel.tables.values())
    delete_keys(lab.runtime, [ObjectKey("Pod", "a", "web")])
    assert lab.fabric_calls == ["remove a/web"]
    assert lab.kernel.tables == lab.expected()
    assert all("a/web" not in {e.key for e in p.endpoints.values()} for p in lab.kernel.tables.values())


def test_a_new_pod_is_plumbed_then_guarded(lab: FakeLab) -> None:
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: a, labels: {role: db}}\n"
           "spec: {nodeName: node2, containers: [{name: c}]}\n")
    apply_sources(lab.runtime, [("db.yaml", DB_POLICY), ("cache.yaml", pod)])
    assert lab.fabric_calls == ["add a/cache"]
    assert lab.kernel.tables == lab.expected()
    node2 = lab.kernel.tables[names.host_netns(LAB, "node2")]
    assert {e.key for e in node2.endpoints.values()} == {"a/db", "a/cache"}


OFFICES = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: offices, labels: {kind: office}}
spec: {nets: [10.9.0.0/24, 10.9.2.0/24, 10.9.4.0/24]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: to-offices}
spec:
  selector: all()
  egress: [{action: Allow, destination: {selector: kind == 'office'}}]
"""


def test_a_change_no_host_could_be_given_is_refused_before_the_store_changes(lab: FakeLab) -> None:
    """The backend plays a kernel that holds at most two entries per set (as ipset's maxelem): the policy
    alone passes, the whole program of every host (its set filled with the three nets) does not."""
    register_backend("memory", lambda: FakeBackend(lab.kernel, max_set_elements=2))
    revision, changes = lab.runtime.store.revision, len(lab.kernel.changes)
    with pytest.raises(lab_apply.ApplyError) as refused:
        apply_sources(lab.runtime, [("offices.yaml", OFFICES)])
    assert "host node1: " in str(refused.value) and "host node2: " in str(refused.value)
    assert "would hold 3 entries, more than 2" in str(refused.value) and "nothing applied" in str(refused.value)
    assert lab.runtime.store.revision == revision
    assert lab.runtime.store.get_object(ObjectKey("GlobalNetworkSet", "", "offices")) is None
    assert len(lab.kernel.changes) == changes and lab.kernel.tables == lab.expected()


# --- warm equals cold over random change sequences (what the controller does, coalescing revisions) ---------
POLICY_TEXTS = [
    DB_POLICY,
    DB_POLICY.replace("role: web", "role: api"),
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: q}\nspec:\n  order: 10\n"
    "  selector: q == 'true'\n  ingress: [{action: Deny}]\n  egress: [{action: Deny}]\n",
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: q}\nspec:\n  order: 10\n"
    "  selector: role == 'api'\n  types: [Egress]\n  egress: [{action: Allow, destination: {selector: q == 'true'}}]\n",
]
POLICY_KEYS = [ObjectKey("NetworkPolicy", "a", "db"), ObjectKey("GlobalNetworkPolicy", "", "q")]
POD_NAMES = ["web", "db", "api", "cache"]
store_change = hst.one_of(
    hst.tuples(hst.just("policy"), hst.integers(0, len(POLICY_TEXTS) - 1)),
    hst.tuples(hst.just("unpolicy"), hst.integers(0, len(POLICY_KEYS) - 1)),
    hst.tuples(hst.just("label"), hst.integers(0, len(POD_NAMES) - 1), hst.sampled_from(["web", "db", "api"]),
               hst.sampled_from(["true", "false"])),
)


def write_to_store(lab: FakeLab, change: tuple[Any, ...]) -> None:
    """One change committed to the store by someone else (the CLI, with the controller as the filters' writer)."""
    store = lab.runtime.store
    with store.transaction():
        if change[0] == "policy":
            for doc in yaml.safe_load_all(POLICY_TEXTS[change[1]]):
                store.put_object(key_of(doc), doc)
        elif change[0] == "unpolicy":
            store.delete_object(POLICY_KEYS[change[1]])
        elif (doc := store.get_object(key := ObjectKey("Pod", "a", POD_NAMES[change[1]]))) is not None:
            labels = {"role": change[2], "q": change[3]}
            store.put_object(key, {**doc, "metadata": {**doc["metadata"], "labels": labels}})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=hst.lists(hst.lists(store_change, min_size=1, max_size=4), min_size=1, max_size=6),
       pod_churn=hst.booleans())
def test_warm_sole_writer_equals_a_fresh_compile_after_any_changes(lab: FakeLab, batches: list[list[tuple[Any, ...]]],
                                                                    pod_churn: bool) -> None:
    """Policies, labels and pods changed in batches of revisions, each batch followed at once by the warm
    world as the controller follows it (`sole_writer`): the kernel always equals a compile from scratch.
    The lab carries over from one example to the next, so later examples start from varied states."""
    cache = ObjectKey("Pod", "a", "cache")
    for batch in batches:
        for change in batch:
            write_to_store(lab, change)
        warm.sync(lab.runtime, sole_writer=True)
        assert lab.kernel.tables == lab.expected()
        if pod_churn:  # a pod created or deleted through the CLI path (plumbed, then guarded)
            if lab.runtime.store.get_object(cache) is None:
                pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: a, labels: {role: db}}\n"
                       "spec: {nodeName: node2, containers: [{name: c}]}\n")
                apply_sources(lab.runtime, [("cache.yaml", pod)])
            else:
                delete_keys(lab.runtime, [cache])
            assert lab.kernel.tables == lab.expected()
