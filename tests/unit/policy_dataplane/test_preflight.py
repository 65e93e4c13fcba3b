"""The apply-time preflight (dataplane/preflight.py) asks the lab's backend to check programs: one policy at
a time (each problem names its policy), then every host's whole program (what one policy cannot show: sets
filled with their members, host endpoints)."""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv4Network

from policy_dataplane.dataplane.backends import get_backend
from policy_dataplane.dataplane.compile import compile_hosts
from policy_dataplane.dataplane.iptables.render import IPSET_MAXELEM
from policy_dataplane.dataplane.preflight import unprogrammable, unprogrammable_hosts
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import Labels, Namespace, Pod
from policy_dataplane.policy.world import World

TO_OFFICES = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: to-offices}
spec:
  selector: all()
  egress: [{action: Allow, destination: {selector: kind == 'office'}}]
"""


def offices(count: int) -> str:
    """A GlobalNetworkSet of `count` /32s that no CIDR merge can shrink (every other address)."""
    nets = ", ".join(str(IPv4Address("10.0.0.0") + 2 * i) + "/32" for i in range(count))
    return f"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: offices, labels: {{kind: office}}}}\nspec: {{nets: [{nets}]}}\n"


def world_with_offices(count: int) -> World:
    world = World()
    world.apply([Namespace("a", Labels({"kubernetes.io/metadata.name": "a"})),
                 Pod("a", "web", Labels({"app": "web"}), (IPv4Address("192.168.0.2"),))])
    world.apply(load_text(TO_OFFICES) + load_text(offices(count)))
    return world


def test_a_set_over_the_kernels_limit_is_seen_only_in_the_whole_program() -> None:
    world = world_with_offices(IPSET_MAXELEM + 1)
    policies = list(world.policies.values())
    iptables, nftables = get_backend("iptables"), get_backend("nftables")
    assert unprogrammable(policies, iptables) == []  # alone, the policy's selector set is empty
    started = time.perf_counter()
    programs = compile_hosts(world, {"node1": {("a", "web"): "cali0000000000a"}})
    problems = unprogrammable_hosts(programs, iptables)
    assert len(problems) == 1 and problems[0].startswith("host node1: ")
    assert f"would hold {IPSET_MAXELEM + 1} entries, more than the kernel takes in one set" in problems[0]
    assert unprogrammable_hosts(programs, nftables) == []  # nft sets have no such limit
    assert time.perf_counter() - started < 60


def test_a_set_at_the_limit_passes() -> None:
    programs = compile_hosts(world_with_offices(3), {"node1": {("a", "web"): "cali0000000000a"}})
    assert unprogrammable_hosts(programs, get_backend("iptables")) == []
    assert any(len(members) == 3 for members in programs["node1"].address_sets.values())
    assert all(isinstance(n, IPv4Network) for s in programs["node1"].address_sets.values() for n in s)
