"""The ip -batch text: every link is created inside its namespaces, never in the root namespace."""

from __future__ import annotations

from topology import batch
from topology.names import PREFIX


def test_fabric_lines_create_namespaces_then_bridge_then_node_veths(plan) -> None:  # type: ignore[no-untyped-def]
    lines = batch.fabric_lines(plan.fabric, plan.nodes)
    assert lines[:5] == [f"netns add {n}" for n in [plan.fabric.netns] + [n.netns for n in plan.nodes]]
    assert lines[5] == (
        f"link add {PREFIX}-fabric index 2 netns {PREFIX}-tt1-fabric type bridge stp_state 0 forward_delay 0"
    )
    h1 = plan.nodes[0]
    assert lines[6] == (
        f"link add {h1.fabric_port} netns {PREFIX}-tt1-fabric type veth peer name eth0 index 2 netns {PREFIX}-tt1-h-h1"
    )
    assert len(lines) == 5 + 1 + 4


def test_pod_lines_put_each_end_in_its_namespace_with_calico_mac(plan) -> None:  # type: ignore[no-untyped-def]
    lines = batch.pod_lines(plan.pods)
    assert lines[:3] == [f"netns add {p.netns}" for p in plan.pods]
    web = plan.pods[0]
    assert lines[3] == (
        f"link add {web.host_ifname} address ee:ee:ee:ee:ee:ee netns {PREFIX}-tt1-h-h1 "
        f"type veth peer name eth0 address 0a:58:0a:c8:00:01 index 2 netns {PREFIX}-tt1-p-dev.web"
    )
    # Every link line names a namespace for both ends, so nothing is created in the root namespace.
    for line in lines[3:]:
        assert line.count(" netns ") == 2


def test_delete_lines() -> None:
    assert batch.netns_delete(["a", "b"]) == ["netns del a", "netns del b"]


def test_another_engines_namespaces_get_only_their_veths_and_attach_lines_are_checked(plan) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from topology.kernel_text import UnsafeText

    assert batch.pod_lines(plan.pods, new_namespaces=False) == batch.pod_lines(plan.pods)[len(plan.pods):]
    assert batch.node_veths(plan.fabric, plan.nodes) == batch.fabric_lines(plan.fabric, plan.nodes)[6:]
    assert batch.netns_attach(f"{PREFIX}-tt1-h-h1", 4242) == f"netns attach {PREFIX}-tt1-h-h1 4242"
    with pytest.raises(UnsafeText):
        batch.netns_attach("x\nnetns del y", 1)
