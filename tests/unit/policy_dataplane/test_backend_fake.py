"""The dataplane seam without a kernel: the registry, the apply helpers and the Dataplane facade, driven
through the in-memory fake backend (the same contract nftables keeps: diffs only against what the kernel
holds, a refused change leaves a host as it was)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from policy_dataplane.dataplane import backends as backend_registry
from policy_dataplane.dataplane.backend import ApplyRefused, apply_hosts
from policy_dataplane.dataplane.backends import backend_names, get_backend, register_backend
from policy_dataplane.dataplane.compile import compile_hosts
from policy_dataplane.dataplane.fake.backend import FakeBackend, FakeKernel
from policy_dataplane.dataplane.lab_dataplane import Dataplane
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import Labels, Namespace, Pod
from policy_dataplane.policy.world import World

DENY_DB = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: a}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{podSelector: {matchLabels: {role: web}}}]}]
"""


def world() -> World:
    w = World()
    w.apply([Namespace("a", Labels({"env": "a"}))])
    w.apply([Pod("a", f"p{i}", Labels({"role": "db" if i == 0 else "web"}), ips=(IPv4Address(f"10.0.0.{i + 1}"),))
             for i in range(3)])
    return w


PLACEMENT = {"h1": [(("a", "p0"), "cali0"), (("a", "p1"), "cali1")], "h2": [(("a", "p2"), "cali2")]}


@pytest.fixture
def kernel() -> FakeKernel:
    return FakeKernel()


def netns(host: str) -> str:
    return f"fake-{host}"


def dataplane(kernel: FakeKernel) -> Dataplane:
    return Dataplane("fk", backend=FakeBackend(kernel), host_netns=netns)


def test_the_built_in_backends_are_registered_and_an_unknown_name_lists_them() -> None:
    assert {"nftables", "iptables", "fake"} <= set(backend_names())
    assert "fake" not in backend_names(for_labs=True)  # a lab spans processes; the fake lives in one
    assert get_backend("iptables").name == "iptables"
    with pytest.raises(ValueError, match="unknown dataplane backend 'ebpf'.*nftables"):
        get_backend("ebpf")


def test_a_new_backend_is_one_registration_and_no_caller_changes(monkeypatch: pytest.MonkeyPatch,
                                                                 kernel: FakeKernel) -> None:
    class Recording(FakeBackend):  # a "third backend": its own class, registered by name
        name = "recording"

    monkeypatch.setattr(backend_registry, "_BACKENDS", dict(backend_registry._BACKENDS))
    register_backend("recording", lambda: Recording(kernel))
    dp = Dataplane("fk", backend="recording", host_netns=netns)
    report = dp.sync(world(), PLACEMENT)
    assert dp.backend == "recording" and set(report.changed_hosts) == {"h1", "h2"}
    assert kernel.tables == {netns(h): p for h, p in compile_hosts(world(), {h: dict(p) for h, p in
                                                                             PLACEMENT.items()}).items()}


def test_sync_patches_only_the_hosts_a_change_touches(kernel: FakeKernel) -> None:
    w, dp = world(), dataplane(kernel)
    assert {r.mode for r in dp.sync(w, PLACEMENT).hosts.values()} == {"full"}
    w.apply(load_text(DENY_DB))
    report = dp.sync(w, PLACEMENT)
    assert report.hosts["h1"].mode == "diff"  # p0 (role=db) lives on h1
    changes = len(kernel.changes)
    w.label_pod("a", "p2", role="other")  # p2 (on h2) leaves the source set of h1's policy
    report = dp.sync(w, PLACEMENT)
    assert report.changed_hosts == ["h1"]
    assert [(c.netns, c.mode) for c in kernel.changes[changes:]] == [(netns("h1"), "diff")]
    assert kernel.tables[netns("h1")] == dp.programs["h1"] and kernel.tables[netns("h2")] == dp.programs["h2"]


def test_apply_hosts_keeps_a_refused_host_as_it_was_and_applies_the_others(kernel: FakeKernel) -> None:
    w, dp = world(), dataplane(kernel)
    dp.sync(w, PLACEMENT)
    before = dict(kernel.tables)
    w.apply(load_text(DENY_DB))
    programs = dp.compile(w, PLACEMENT)
    kernel.refuse_next(netns("h1"))
    with pytest.raises(ApplyRefused, match="fake-h1"):
        apply_hosts({dp.host(h): p for h, p in programs.items()})
    assert kernel.tables[netns("h1")] is before[netns("h1")]  # untouched
    assert dp.host("h1").applied is before[netns("h1")]
    assert kernel.tables[netns("h2")] == programs["h2"]


def test_a_new_process_takes_over_by_diff_and_falls_back_to_full_after_a_restart(tmp_path: Path,
                                                                                  kernel: FakeKernel) -> None:
    state = tmp_path / "dataplane.state"
    w = world()
    first = dataplane(kernel)
    first.sync(w, PLACEMENT)
    first.save_state(state)

    w.apply(load_text(DENY_DB))
    second = dataplane(kernel)  # the next CLI command
    assert second.load_state(state)
    assert second.sync(w, PLACEMENT).hosts["h1"].mode == "diff"
    second.save_state(state)

    kernel.tables.pop(netns("h1"))  # h1 restarted: its table is gone, the saved state is stale
    third = dataplane(kernel)
    assert third.load_state(state)
    w.label_pod("a", "p1", role="db")
    assert third.sync(w, PLACEMENT).hosts["h1"].mode == "full"
    assert kernel.tables[netns("h1")] == third.programs["h1"]


def test_a_stale_diff_without_a_saved_state_is_refused(kernel: FakeKernel) -> None:
    w, dp = world(), dataplane(kernel)
    dp.sync(w, PLACEMENT)
    kernel.tables.pop(netns("h2"))
    w.label_pod("a", "p2", role="db")
    with pytest.raises(ApplyRefused, match="does not hold"):
        dp.sync(w, PLACEMENT)


def test_state_saved_by_another_backend_is_not_taken_over(tmp_path: Path, kernel: FakeKernel) -> None:
    state = tmp_path / "dataplane.state"
    Dataplane("fk", backend="nftables", host_netns=netns).save_state(state)
    assert not dataplane(kernel).load_state(state)


def test_remove_and_counters_and_names_go_through_the_backend(kernel: FakeKernel) -> None:
    w, dp = world(), dataplane(kernel)
    w.apply(load_text(DENY_DB))
    dp.sync(w, PLACEMENT)
    names = dp.driver.describe("h1", netns("h1"), None)
    assert list(names.policy_of_chain.values()) == [("a/knp.default.db", "ingress")]
    assert dp.counters(["h1", "h2"]).unknown_interface_drops == {"h1": (0, 0), "h2": (0, 0)}
    dp.remove("h1")
    assert netns("h1") not in kernel.tables and "h1" not in dp.programs


def test_a_forgotten_host_leaves_the_saved_state_and_its_kernel_untouched(tmp_path: Path, kernel: FakeKernel) -> None:
    """A node removed from the lab (its namespace gone with its filter) is forgotten, not removed."""
    w, dp, state = world(), dataplane(kernel), tmp_path / "dataplane.state"
    dp.sync(w, PLACEMENT)
    changes = len(kernel.changes)
    dp.forget("h2")
    dp.save_state(state)
    assert len(kernel.changes) == changes and netns("h2") in kernel.tables  # no kernel call was made
    later = dataplane(kernel)
    assert later.load_state(state) and later.host("h1").applied is not None
    assert later.host("h2").applied is None  # unknown: a new h2 would get a full program
