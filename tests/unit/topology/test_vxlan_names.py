"""Names and commands of the fabric across machines: everything carries the lab's prefix."""

from __future__ import annotations

from ipaddress import IPv4Interface

import pytest

from topology import names
from topology.kernel_text import UnsafeText
from topology.vxlan import MachinePlan, machine_namespaces, uplink_on_device


def test_every_namespace_of_a_machine_carries_the_lab_prefix() -> None:
    prefix = names.lab_netns_prefix("two")
    made = [*machine_namespaces("two", "ma"), names.underlay_netns("two")]
    assert all(n.startswith(prefix) for n in made)
    assert names.fabric_netns("two", "ma") != names.fabric_netns("two", "mb") != names.fabric_netns("two")
    assert len(names.vxlan_ifname()) <= 15 and len(names.underlay_ifname("abcdef")) <= 15


def test_a_real_machine_uplink_is_made_inside_the_machine_namespace() -> None:
    plan = MachinePlan("two", "ma", IPv4Interface("10.250.0.1/24"), "eth1")
    assert uplink_on_device(plan) == [
        f"link add uplink link eth1 netns {names.machine_netns('two', 'ma')} type macvlan mode bridge"]


def test_a_device_name_cannot_smuggle_a_second_command() -> None:
    with pytest.raises(UnsafeText):
        uplink_on_device(MachinePlan("two", "ma", IPv4Interface("10.250.0.1/24"), "eth1\nlink del x"))
