"""A running lab end to end: pods added and deleted at run time, policy applied with `lab apply`,
labels changed, and real probes that must agree with the oracle on every pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.addresses import ipam_of
from lab.apply import ApplyError, apply_sources, delete_keys, key_for, label
from lab.cli import app, register_commands
from lab.fabric import Fabric, kernel_routes
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from lab.traffic_hooks import expected_verdicts, latency_conditions, probe_endpoints
from policy_dataplane.policy.documents import DocumentsInvalid
from tests.integration.engine_variants import VARIANTS
from tests.integration.lab.reach import tcp_outcomes, tcp_reach
from topology import names
from traffic.measure import measure_matrix
from traffic.model import Protocol
from traffic.probes import ProbeEngine

pytestmark = pytest.mark.root
register_commands()

SCENARIOS = Path(__file__).parents[3] / "lab" / "scenarios"


def small_lab(name: str) -> dict:
    return {
        "name": name,
        "hosts": 3,
        "bgp": {"holdTime": 3},
        "namespaces": [{"name": "dev", "labels": {"env": "dev"}}, {"name": "prod", "labels": {"env": "prod"}}],
        "pods": [
            {"name": "web", "namespace": "dev", "replicas": 2, "labels": {"app": "web"},
             "ports": [{"name": "http", "containerPort": 80}]},
            {"name": "db", "namespace": "dev", "labels": {"app": "db"}, "ports": [{"containerPort": 80}]},
            {"name": "web", "namespace": "prod", "replicas": 2, "labels": {"app": "web"},
             "ports": [{"name": "http", "containerPort": 80}]},
        ],
        "externals": [{"name": "ext", "ports": [{"name": "https", "containerPort": 443}]}],
    }


POD_YAML = """
apiVersion: v1
kind: Pod
metadata: {name: late, namespace: prod, labels: {app: late}}
spec:
  nodeName: node3
  containers: [{name: main, ports: [{containerPort: 80}]}]
"""


def measured_equals_oracle(lab: str) -> None:
    endpoints = probe_endpoints(lab)
    with ProbeEngine() as engine:
        report = measure_matrix(engine, endpoints, lambda pairs, proto, port: expected_verdicts(lab, pairs, proto, port),
                                Protocol("tcp"), 80, full=True)
    bad = [r for r in report.records if r.expected != r.measured]
    assert report.mismatches == 0, bad[:10]
    return report


@pytest.mark.stores
def test_pods_added_and_deleted_at_run_time(make_lab):
    make_lab(small_lab("it4"))
    with LabRuntime.open("it4") as runtime:
        apply_sources(runtime, [("late.yaml", POD_YAML)])
        late = next(p for p in pod_plans(runtime) if p.key == "prod/late")
        assert ipam_of(runtime).allocation("prod/late").ip == late.ip
        Fabric(runtime).wait_converged(timeout=30)
        web = next(p for p in pod_plans(runtime) if p.key == "dev/web-0")
        assert tcp_reach(web.netns, [(str(late.ip), 80)]) == {(str(late.ip), 80): True}
        # the external server answers on its declared port, and refuses the others like any host
        ext_ip = next(e.ip for e in probe_endpoints("it4") if e.kind == "external")
        assert tcp_outcomes(web.netns, [(str(ext_ip), 443), (str(ext_ip), 444)]) == {
            (str(ext_ip), 443): "accepted", (str(ext_ip), 444): "refused"}
        assert tcp_outcomes(late.netns, [(str(web.ip), 80), (str(web.ip), 81)]) == {
            (str(web.ip), 80): "accepted", (str(web.ip), 81): "refused"}
        delete_keys(runtime, [key_for("pod", "prod/late")])
        assert ipam_of(runtime).allocation("prod/late") is None
        assert "prod/late" not in {p.key for p in pod_plans(runtime)}
        assert not any(n.endswith("p-prod.late") for n in Fabric(runtime).engine.list_owned("it4"))
        # the host-side /32 is gone from node3
        assert late.ip not in {r.network_address for r in kernel_routes(names.host_netns("it4", "node3"))
                               if r.prefixlen == 32}


@pytest.mark.stores
def test_concurrent_changes_leave_a_consistent_lab(make_lab):
    import threading

    make_lab(small_lab("it9"))
    files = [("late.yaml", POD_YAML.replace("name: late,", f"name: late{i},")) for i in range(3)]
    files.append((str(SCENARIOS / "dev-prod-isolation.yaml"), (SCENARIOS / "dev-prod-isolation.yaml").read_text()))
    errors: list[BaseException] = []

    def apply_one(source: tuple[str, str]) -> None:
        with LabRuntime.open("it9") as runtime:
            try:
                apply_sources(runtime, [source])
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=apply_one, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with LabRuntime.open("it9") as runtime:
        plans = {p.key: p for p in pod_plans(runtime)}
        assert {"prod/late0", "prod/late1", "prod/late2"} <= set(plans)
        assert len({p.ip for p in plans.values()}) == len(plans)  # no address handed out twice
        Fabric(runtime).wait_converged(timeout=30)
    measured_equals_oracle("it9")  # every pod plumbed, every filter as the store says


@pytest.mark.on_every_engine
@pytest.mark.parametrize("engine_variant", VARIANTS)
def test_policy_from_yaml_is_enforced_as_the_oracle_says(make_lab, engine_variant):
    make_lab(small_lab("it5"))
    with LabRuntime.open("it5") as runtime:
        measured_equals_oracle("it5")  # no policy: everything allowed, measured
        files = [(str(p), p.read_text()) for p in (SCENARIOS / "dev-prod-isolation.yaml", SCENARIOS / "quarantine.yaml")]
        apply_sources(runtime, files)
        report = measured_equals_oracle("it5")
        denied = {(r.src, r.dst) for r in report.records if r.measured == "deny"}
        assert ("prod/web-0", "dev/db") in denied and ("dev/web-0", "dev/db") not in denied
        # `lab latency` lifts the policies for its "policy lifted" run only, then programs them back
        conditions = latency_conditions("it5")
        assert list(conditions) == ["with policy", "policy lifted"]
        plans = {p.key: p for p in pod_plans(runtime)}
        prod_web, dev_db = plans["prod/web-0"], plans["dev/db"]
        target = (str(dev_db.ip), 80)
        with conditions["policy lifted"]():
            assert tcp_outcomes(prod_web.netns, [target], timeout=1) == {target: "accepted"}
        assert tcp_outcomes(prod_web.netns, [target], timeout=1) == {target: "no answer"}
        label(runtime, key_for("pod", "dev/db"), {"quarantine": "true"})
        report = measured_equals_oracle("it5")
        assert all(r.measured == "deny" for r in report.records if "dev/db" in (r.src, r.dst))
        # `lab explain` knows the lab's nodes by name: the external server is `ext`
        explained = CliRunner().invoke(app, ["explain", "dev/db", "ext", "--port", "443", "--lab", "it5", "--json"])
        assert explained.exit_code == 0, explained.output
        trace = json.loads(explained.stdout)
        assert trace["allowed"] is False and trace["egress"]["decided_by"]["policy"] == "quarantine"
        label(runtime, key_for("pod", "dev/db"), {"quarantine": None})
        measured_equals_oracle("it5")


def test_diff_is_a_dry_run_that_predicts_what_apply_then_does(make_lab):
    make_lab(small_lab("it8"))
    with LabRuntime.open("it8") as runtime:
        revision = runtime.store.revision
        isolation = SCENARIOS / "dev-prod-isolation.yaml"
        result = CliRunner().invoke(app, ["diff", "-f", str(isolation), "--lab", "it8", "--json"])
        assert result.exit_code == 0, result.output
        changes = {(c["src"], c["dst"], c["port"]): c["after"] for c in json.loads(result.stdout)["changes"]}
        assert changes[("prod/web-0", "dev/db", 80)] == "deny" and ("dev/web-0", "dev/db", 80) not in changes
        assert all(after == "deny" for after in changes.values())
        assert runtime.store.revision == revision  # nothing applied
        # what the diff predicted is what packets show once applied
        apply_sources(runtime, [(str(isolation), isolation.read_text())])
        report = measured_equals_oracle("it8")
        denied_now = {(r.src, r.dst) for r in report.records if r.measured == "deny"}
        assert denied_now == {(src, dst) for (src, dst, port) in changes if port == 80}


@pytest.mark.parametrize("change", ["deny", "label"])
def test_policy_latency_through_the_lab_leaves_it_as_it_was(make_lab, change):
    make_lab(small_lab("it10"))
    files = [(str(SCENARIOS / "dev-prod-isolation.yaml"), (SCENARIOS / "dev-prod-isolation.yaml").read_text())]
    with LabRuntime.open("it10") as runtime:
        apply_sources(runtime, files)
        objects_before = sorted(str(k) for k, _ in runtime.store.objects())
        labels_before = {str(k): d["metadata"].get("labels") for k, d in runtime.store.objects(kinds=["Pod"])}
    result = CliRunner().invoke(app, ["policy-latency", "--lab", "it10", "--change", change, "--repetitions", "3",
                                      "--sources", "4", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["per_path_us"]["samples"] >= 3 and summary["per_path_us"]["missing"] == 0
    assert summary["baseline_wrong"] == 0 and summary["flaps"] == 0
    with LabRuntime.open("it10") as runtime:
        assert sorted(str(k) for k, _ in runtime.store.objects()) == objects_before
        assert {str(k): d["metadata"].get("labels") for k, d in runtime.store.objects(kinds=["Pod"])} == labels_before
    measured_equals_oracle("it10")


def test_a_warm_process_ends_where_a_fresh_one_starts(make_lab):
    """Many changes in one process (the warm world and filters follow the store incrementally) leave the same
    world and the same compiled programs as a fresh process building everything from the store."""
    from lab import warm
    from lab.stored_world import world_of
    from policy_dataplane.dataplane.lab_dataplane import Dataplane

    make_lab(small_lab("it11"), controller=False)  # this process is the filters' writer (see test_controller)
    with LabRuntime.open("it11") as runtime:
        quarantine = SCENARIOS / "quarantine.yaml"
        isolation = SCENARIOS / "dev-prod-isolation.yaml"
        apply_sources(runtime, [(str(isolation), isolation.read_text())])
        apply_sources(runtime, [(str(quarantine), quarantine.read_text()), ("late.yaml", POD_YAML)])
        label(runtime, key_for("pod", "dev/db"), {"quarantine": "true"})
        label(runtime, key_for("namespace", "prod"), {"env": "production"})
        delete_keys(runtime, [key_for("pod", "dev/web-1")])
        label(runtime, key_for("pod", "prod/late"), {"quarantine": "true"})
        kept = warm._WARM["it11"]
        assert kept.revision == runtime.store.revision  # it followed every change without starting again
        fresh = world_of(runtime)
        assert kept.world.pods == fresh.pods and kept.world.policies == fresh.policies
        assert kept.world.namespaces == fresh.namespaces
        assert kept.world.memberships_from_scratch() == fresh.memberships_from_scratch()
        dp = Dataplane("it11")
        try:
            assert dp.compile(fresh, runtime.placement()) == kept.dataplane.programs
        finally:
            dp.close()
    measured_equals_oracle("it11")


@pytest.mark.stores
def test_a_bad_apply_changes_nothing(make_lab):
    make_lab(small_lab("it6"))
    with LabRuntime.open("it6") as runtime:
        before_revision = runtime.store.revision
        before = runtime.dataplane_state.read_bytes()
        good = (SCENARIOS / "quarantine.yaml").read_text()
        bad = good.replace("order: 200", "order: 200\n  bogusField: 1")
        with pytest.raises(DocumentsInvalid) as info:
            apply_sources(runtime, [("q.yaml", bad), ("late.yaml", POD_YAML)])
        assert "q.yaml" in str(info.value) and "bogusField" in str(info.value)
        with pytest.raises(ApplyError):
            apply_sources(runtime, [("late.yaml", POD_YAML.replace("namespace: prod", "namespace: nowhere"))])
        # an address the IPAM refuses (taken by dev/db): the good pod in the same apply is not created either
        taken = next(p.ip for p in pod_plans(runtime) if p.key == "dev/db")
        fixed = POD_YAML.replace("name: late,", "name: fixed,").replace(
            "labels: {app: late}", f"labels: {{app: late}}, annotations: {{cni.projectcalico.org/ipAddrs: '[\"{taken}\"]'}}")
        with pytest.raises(ApplyError) as refused:
            apply_sources(runtime, [("late.yaml", POD_YAML), ("fixed.yaml", fixed)])
        message = str(refused.value)
        assert "fixed.yaml" in message and "Pod prod/fixed" in message and "ipAddrs" in message and "dev/db" in message
        assert runtime.store.revision == before_revision
        assert runtime.dataplane_state.read_bytes() == before
        assert "prod/late" not in {p.key for p in pod_plans(runtime)}


def test_a_failed_up_leaves_nothing(lab_dirs):
    from lab import pipeline
    from lab.labfile import parse_lab

    bad_policy = lab_dirs / "bad.yaml"
    bad_policy.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: dev}\n"
                          "spec: {podSelector: {}, policyTypes: [Sideways]}\n")
    data = {**small_lab("it7"), "apply": ["bad.yaml"]}
    spec = parse_lab(data, "<test>", lab_dirs)
    with pytest.raises(DocumentsInvalid):
        pipeline.up(spec)
    from topology.engine import NetnsEngine

    assert NetnsEngine().list_owned("it7") == []
    assert not names.LabPaths.for_lab("it7").database.exists()
