"""Issue 2: the fabric, for real: namespaces, ExaBGP/BIRD sessions, kernel routes, real TCP."""

from __future__ import annotations

import ipaddress
import time

import pytest

from lab.addresses import ipam_of
from lab.fabric import Fabric, kernel_routes
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from tests.integration.engine_variants import VARIANTS
from tests.integration.lab.conftest import kernel_routes as route_entries
from tests.integration.lab.reach import tcp_reach
from topology import names

pytestmark = pytest.mark.root


def four_by_ten(name: str, layout: str = "mesh") -> dict:
    return {
        "name": name,
        "hosts": 4,
        "bgp": {"layout": layout, "holdTime": 3},
        "namespaces": [{"name": "a"}, {"name": "b"}],
        "pods": [
            {"name": "web", "namespace": "a", "replicas": 5, "ports": [{"name": "http", "containerPort": 80}]},
            {"name": "api", "namespace": "b", "replicas": 5, "ports": [{"containerPort": 8080}]},
        ],
        "externals": [{"name": "ext", "ports": [{"containerPort": 443}]}],
    }


def all_pairs_reach(runtime: LabRuntime) -> dict[str, list[str]]:
    """Per source pod, the targets it could NOT reach with kernel TCP (port 80: accepted or refused)."""
    pods = pod_plans(runtime)
    ext = [n for n in Fabric(runtime).nodes() if n.kind == "external"]
    targets = [(str(p.ip), 80) for p in pods] + [(str(n.fabric_ip.ip), 443) for n in ext]
    failures = {}
    for pod in pods:
        result = tcp_reach(pod.netns, [t for t in targets if t[0] != str(pod.ip)])
        bad = [f"{ip}:{port}" for (ip, port), ok in result.items() if not ok]
        if bad:
            failures[pod.key] = bad
    for node in ext:
        result = tcp_reach(node.netns, [(str(p.ip), 80) for p in pods])
        bad = [f"{ip}:{port}" for (ip, port), ok in result.items() if not ok]
        if bad:
            failures[node.name] = bad
    return failures


@pytest.mark.on_every_engine
@pytest.mark.parametrize("engine_variant", VARIANTS)
def test_mesh_every_pod_reaches_every_pod_and_the_external_host(make_lab, engine_variant):
    make_lab(four_by_ten("it1"))
    with LabRuntime.open("it1") as runtime:
        assert all_pairs_reach(runtime) == {}
        ipam = ipam_of(runtime)
        fabric = Fabric(runtime)
        for host in runtime.host_names():
            entries = route_entries(names.host_netns("it1", host))
            own = set(ipam.blocks_of(host))
            blackholes = {ipaddress.ip_network(e["dst"]) for e in entries if e.get("type") == "blackhole"}
            assert blackholes == own, host
            remote = set().union(*(ipam.blocks_of(h) for h in runtime.host_names() if h != host))
            via = [ipaddress.ip_network(e["dst"]) for e in entries if "gateway" in e and e.get("dst") != "default"]
            assert sorted(via) == sorted(remote), host  # exactly one route per remote block
        from bgp.status import sessions

        states = sessions(runtime.paths, fabric.speaker_plans())
        assert states and all(s.state.lower() == "established" for s in states), states


def test_stopping_a_speaker_withdraws_its_blocks_and_restarting_restores_them(make_lab):
    make_lab(four_by_ten("it2"), controller=False)  # no controller: it would restart the stopped speaker
    with LabRuntime.open("it2") as runtime:
        from bgp import speaker

        fabric = Fabric(runtime)
        node2_blocks = set(ipam_of(runtime).blocks_of("node2"))
        node1 = names.host_netns("it2", "node1")
        assert node2_blocks <= kernel_routes(node1)
        plan = next(p for p in fabric.speaker_plans().speakers if p.name == "node2")
        speaker.stop_speaker(runtime.paths, "node2")
        deadline = time.monotonic() + 3 * 3 + 5  # well past the 3 s hold time
        while node2_blocks & kernel_routes(node1) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not node2_blocks & kernel_routes(node1)
        speaker.start_speaker(runtime.paths, plan)
        fabric.wait_converged(timeout=30)
        assert node2_blocks <= kernel_routes(node1)


def test_route_reflector_layout_with_bird(make_lab):
    make_lab(four_by_ten("it3", layout="route-reflector"))
    with LabRuntime.open("it3") as runtime:
        assert Fabric(runtime).missing_routes() == {}
        assert all_pairs_reach(runtime) == {}
