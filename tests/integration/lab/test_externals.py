"""Issue #8: external servers added and removed while the lab is up, with addresses and ports as in a lab file.
Real namespaces, ExaBGP speakers that take the new peer without a restart, the controller, and packets."""

from __future__ import annotations

import pytest

from bgp import speaker
from bgp.files import ReflectorFiles, SpeakerFiles
from lab.controller import launcher
from lab.externals import ExternalError, add_external, remove_external
from lab.fabric import Fabric
from lab.runtime import LabRuntime
from lab.traffic_hooks import expected_verdicts, probe_endpoints
from policy_dataplane.dataplane import program_state
from topology import names, netns
from traffic.measure import measure_matrix
from traffic.model import Protocol
from traffic.probes import ProbeEngine

pytestmark = pytest.mark.root
LAB = "iex"
SPEC = {
    "name": LAB, "hosts": 2, "bgp": {"holdTime": 3},
    "namespaces": [{"name": "dev"}],
    "pods": [{"name": "web", "namespace": "dev", "replicas": 2, "ports": [{"containerPort": 80}]}],
    "externals": [{"name": "tasks", "ports": [{"name": "https", "containerPort": 443}]}],
}


def mismatches(port: int) -> tuple[list[object], set[str]]:
    """Measured against expected for every pair of pods and externals on `port`, and the names probed."""
    endpoints = probe_endpoints(LAB)
    with ProbeEngine() as engine:
        report = measure_matrix(engine, endpoints, lambda pairs, proto, p: expected_verdicts(LAB, pairs, proto, p),
                                Protocol.TCP, port, full=True)
    return [r for r in report.records if r.expected != r.measured], {e.name for e in endpoints}


def speaker_pids(runtime: LabRuntime) -> dict[str, int | None]:
    return {s.name: speaker.speaker_pid(runtime.paths, s.name) for s in Fabric(runtime).speaker_plans().speakers}


def configs_naming(runtime: LabRuntime, address: str) -> set[str]:
    """The speakers and reflectors whose configuration names this peer address."""
    plans = Fabric(runtime).speaker_plans()
    files = {s.name: SpeakerFiles.of(runtime.paths, s.name).config for s in plans.speakers}
    files |= {r.name: ReflectorFiles.of(runtime.paths, r.name).config for r in plans.reflectors}
    return {name for name, path in files.items() if address in path.read_text().split()}


@pytest.mark.parametrize("layout", ["mesh", "route-reflector"])
@pytest.mark.parametrize("engine_variant", ["netns", pytest.param("mininet", marks=pytest.mark.engines)])
def test_an_external_added_and_removed_while_the_lab_is_up(make_lab, layout: str, engine_variant: str) -> None:
    make_lab({**SPEC, "bgp": {**SPEC["bgp"], "layout": layout}})  # type: ignore[dict-item]
    with LabRuntime.open(LAB) as runtime:
        before = speaker_pids(runtime)
        revision = runtime.store.revision
        with pytest.raises(ExternalError, match="the name is also a host's"):
            add_external(runtime, {"name": "node1"})
        with pytest.raises(ExternalError, match="no external named 'crm'"):
            remove_external(runtime, "crm")
        assert runtime.store.revision == revision  # refused before anything changed

        node = add_external(runtime, {"name": "crm", "ports": [{"name": "https", "containerPort": 443}],
                                      "dnsNames": ["crm.example.com"]})
        assert netns.exists(node.netns) and node.netns == names.external_netns(LAB, "crm")
        after = speaker_pids(runtime)
        assert after["crm"] is not None
        assert {n: after[n] for n in before} == before  # the others took the new peer without a restart
        peers = {"mesh": set(before), "route-reflector": {"rr1"}}[layout]  # who must know the new peer
        assert configs_naming(runtime, str(node.fabric_ip.ip)) == peers
        Fabric(runtime).wait_converged(30)  # crm has a route to every host's pods
        assert launcher.running_pid(runtime.paths) is not None  # the controller runs again
    wrong, probed = mismatches(443)
    assert "crm" in probed and wrong == []

    with LabRuntime.open(LAB) as runtime:
        remove_external(runtime, "crm")
        assert not netns.exists(node.netns)
        assert speaker.speaker_pid(runtime.paths, "crm") is None
        assert {n: p for n, p in speaker_pids(runtime).items()} == before
        assert configs_naming(runtime, str(node.fabric_ip.ip)) == set()
        assert [e.name for e in runtime.spec.externals] == ["tasks"]
        _backend, applied = program_state.loads(runtime.dataplane_state.read_bytes(), "dataplane.state")
        assert set(applied) == {"node1", "node2", "tasks"}  # the saved filters forget crm's
        assert launcher.running_pid(runtime.paths) is not None
    wrong, probed = mismatches(443)
    assert "crm" not in probed and wrong == []
