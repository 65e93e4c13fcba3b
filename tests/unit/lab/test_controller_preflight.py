"""A write's whole-program check on a forked snapshot of the controller's warm world: the same verdict as
the cold check, and the controller's own world never sees the change."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import yaml

from lab.controller.preflight import check_in_child, make_pages_writable_again
from lab.store import Placement
from lab.warm import WarmPolicy
from policy_dataplane.dataplane.iptables.render import IPSET_MAXELEM
from policy_dataplane.dataplane.lab_dataplane import Dataplane
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import Labels, Namespace, Pod
from policy_dataplane.policy.world import World
from tests.unit.policy_dataplane.test_preflight import TO_OFFICES, offices

PLACEMENT = Placement("a", "web", "node1", "192.168.0.2")


@dataclass
class LabOfOneHost:
    """What the check asks of the controller's runtime: the lab's backend and where pods run."""

    spec: Any = field(default_factory=lambda: type("Spec", (), {"dataplane": "iptables"})())

    def placement(self, placements: Any = None) -> dict[str, list[tuple[tuple[str, str], str]]]:
        return {"node1": [((p.namespace, p.name), "cali0000000000a") for p in placements]}


def warm_world(backend: str = "iptables") -> WarmPolicy:
    world = World()
    world.apply([Namespace("a", Labels({"kubernetes.io/metadata.name": "a"})),
                 Pod("a", "web", Labels({"app": "web"}), (IPv4Address(PLACEMENT.ip),), node="node1")])
    world.apply(load_text(TO_OFFICES) + load_text(offices(3)))
    dataplane = Dataplane("t", backend)
    pods_by_host = LabOfOneHost().placement([PLACEMENT])
    dataplane.compile(world, pods_by_host)
    return WarmPolicy(1, Path("unused"), world, dataplane, placements={("a", "web"): PLACEMENT},
                      pods_by_host=pods_by_host)


def put_offices(count: int) -> dict[str, Any]:
    return {"revision": 1, "placed": [], "puts": [[["GlobalNetworkSet", "", "offices"], yaml.safe_load(offices(count))]]}


def test_a_change_the_backend_cannot_take_is_found_in_the_snapshot_and_the_world_stays_as_it_was() -> None:
    warm = warm_world()
    answer = check_in_child(warm, LabOfOneHost(), put_offices(IPSET_MAXELEM + 1))  # type: ignore[arg-type]
    assert answer["ok"] and answer["warm"]
    [problem] = answer["problems"]
    assert problem.startswith("host node1: ") and f"would hold {IPSET_MAXELEM + 1} entries" in problem
    [netset] = warm.world.netsets.values()
    assert len(netset.nets) == 3  # the controller's world: untouched by the child's change


def test_a_change_the_backend_can_take_passes() -> None:
    answer = check_in_child(warm_world(), LabOfOneHost(), put_offices(5))  # type: ignore[arg-type]
    assert answer == {"ok": True, "warm": True, "problems": []}


def test_a_failing_check_is_reported_not_raised() -> None:
    broken = {"revision": 1, "placed": [], "puts": [[["GlobalNetworkSet", "", "x"], {"kind": "GlobalNetworkSet",
                                                                                   "apiVersion": "projectcalico.org/v3"}]]}
    answer = check_in_child(warm_world(), LabOfOneHost(), broken)  # type: ignore[arg-type]
    assert answer["ok"] is False and answer["error"]


def _touch_after_a_fork(data: bytearray, populate: bool) -> int:
    """Minor page faults while writing one byte per page of `data`, after a fork (and the populate)."""
    import os
    import resource

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    if populate:
        assert make_pages_writable_again() >= len(data) // 4096
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(0, len(data), 4096):
        data[i] = (data[i] + 1) % 256
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_after_a_fork_the_populated_pages_take_no_faults() -> None:
    data = bytearray(32 << 20)
    for i in range(0, len(data), 4096):
        data[i] = 1
    pages = len(data) // 4096
    assert _touch_after_a_fork(data, populate=False) > pages // 2  # the fork's cost, without the populate
    assert _touch_after_a_fork(data, populate=True) < pages // 20
