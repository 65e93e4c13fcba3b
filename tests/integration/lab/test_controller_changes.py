"""Writes through the controller: a stream of mixed changes, each reported done only once every host has
it, so no packet the oracle denies is ever delivered after a change returns; at the end the measured
matrix equals the oracle, and the controller's warm programs equal a fresh compile from the store."""

from __future__ import annotations

import difflib
import random
import time

import pytest

from lab.apply import apply_sources, delete_keys, key_for, label
from lab.controller import launcher
from lab.controller.daemon import program_digests
from lab.runtime import LabRuntime
from lab.stored_world import world_of
from lab.traffic_hooks import expected_verdicts, probe_endpoints, ref, verdicts
from policy_dataplane.dataplane.lab_dataplane import Dataplane
from policy_dataplane.dataplane.nft.render import render_full
from tests.integration.lab.reach import tcp_outcomes_from
from tests.integration.lab.test_lab_policy import SCENARIOS, measured_equals_oracle, small_lab

pytestmark = pytest.mark.root

CHANGES = 200  # the count: every source's denied probes go out at once, so a step costs ~0.3 s
DENY_APP = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: deny-{app}}}
spec:
  order: 100
  selector: app == "{app}"
  types: [Ingress]
  ingress: [{{action: Deny, source: {{selector: stage == "blocked"}}}}]
"""
POD = """
apiVersion: v1
kind: Pod
metadata: {{name: extra-{i}, namespace: prod, labels: {{app: extra}}}}
spec: {{containers: [{{name: main, ports: [{{containerPort: 80}}]}}]}}
"""


def no_denied_packet_delivered(lab: str) -> int:
    """Probes every pod pair on port 80; returns how many were denied (and asserts none got through)."""
    pods = [e for e in probe_endpoints(lab) if e.kind == "pod"]
    pairs = [(s, d) for s in pods for d in pods if s is not d]
    expected = expected_verdicts(lab, pairs, "tcp", 80)
    denied = [(s, d) for (s, d), allowed in zip(pairs, expected, strict=True) if not allowed]
    by_source: dict[str, list[tuple[str, int]]] = {}
    for s, d in denied:
        by_source.setdefault(s.netns, []).append((str(d.ip), 80))
    for netns, outcomes in tcp_outcomes_from(by_source, timeout=0.3).items():
        delivered = [t for t, o in outcomes.items() if o != "no answer"]  # a refusal came from the pod too
        assert not delivered, f"denied packets delivered from {netns} to {delivered}"
    return len(denied)


def test_mixed_changes_through_the_controller(make_lab):
    make_lab(small_lab("it12"))
    assert launcher.running_pid(LabRuntime.open("it12").paths) is not None
    runtime = LabRuntime.open("it12")
    rng = random.Random(12)
    quarantine = SCENARIOS / "quarantine.yaml"
    apply_sources(runtime, [(str(quarantine), quarantine.read_text())])
    extra: list[int] = []
    denied_seen = 0
    try:
        for step in range(CHANGES):
            pods = [k for k, _ in runtime.pod_documents()]
            kind = rng.choice(["label", "label", "stage", "policy", "pod"])
            if kind == "label":
                label(runtime, rng.choice(pods), {"quarantine": rng.choice(["true", "false"])})
            elif kind == "stage":
                label(runtime, rng.choice(pods), {"stage": rng.choice(["blocked", "open"])})
            elif kind == "policy":
                app = rng.choice(["web", "db"])
                key = key_for("globalnetworkpolicy", f"deny-{app}")
                if runtime.store.get_object(key) is None:
                    apply_sources(runtime, [("deny.yaml", DENY_APP.format(app=app))])
                else:
                    delete_keys(runtime, [key])
            elif extra and rng.random() < 0.5:
                delete_keys(runtime, [key_for("pod", f"prod/extra-{extra.pop(0)}")])
            else:
                extra.append(step)
                apply_sources(runtime, [("pod.yaml", POD.format(i=step))])
            denied_seen += no_denied_packet_delivered("it12")
        assert denied_seen > 0  # the stream did test denied paths
        # warm (the controller's programs) equals cold (a fresh compile of the store)
        answer = launcher.ask(runtime.paths, {"op": "programs", "text": True}, timeout=60)
        assert answer["revision"] == runtime.store.revision
        dp = Dataplane("it12")
        try:
            fresh = dp.compile(world_of(runtime), runtime.placement())
        finally:
            dp.close()
        differing = [h for h, digest in program_digests(fresh).items() if answer["programs"].get(h) != digest]
        assert not differing, "\n".join(difflib.unified_diff(
            render_full(fresh[differing[0]]).splitlines(), answer["text"][differing[0]].splitlines(),
            "fresh compile", "controller", lineterm=""))
        # the matrix's expected column, warm (the controller's world) equals cold (the store's)
        endpoints = probe_endpoints("it12")
        flat = [(ref(s), ref(d), d.kind, d.name) for s in endpoints for d in endpoints if s is not d]
        warm_answer = launcher.ask(runtime.paths, {"op": "verdicts", "pairs": flat, "protocol": "tcp", "port": 80})
        assert warm_answer["ok"] and len(set(warm_answer["allowed"])) == 2  # some allowed, some denied
        assert warm_answer["allowed"] == verdicts(world_of(runtime), runtime, flat, "tcp", 80)
    finally:
        runtime.close()
    measured_equals_oracle("it12")


def test_a_command_that_programs_the_hosts_right_after_a_write_diffs_against_what_they_hold(make_lab):
    """The CI failure of `lab bench`: a write the controller programmed at once (its fast lane) had not been
    saved yet when the bench took the change lock and programmed the hosts itself. Its diff was made against
    the state saved before the write, and destroyed an ipset the controller had already destroyed."""
    make_lab({**small_lab("it14"), "dataplane": "iptables", "hosts": 2})
    runtime = LabRuntime.open("it14")
    try:
        for app in ("web", "db"):
            apply_sources(runtime, [("deny.yaml", DENY_APP.format(app=app))])
            time.sleep(1.5)  # the controller's next passes save what the filters hold: the policy's ipsets
            delete_keys(runtime, [key_for("globalnetworkpolicy", f"deny-{app}")])  # they are destroyed
            with runtime.exclusive():  # what `lab bench` does next, at once
                dp = runtime.dataplane()
                try:
                    dp.sync(world_of(runtime), runtime.placement())
                    dp.save_state(runtime.dataplane_state)
                finally:
                    dp.close()
    finally:
        runtime.close()
    measured_equals_oracle("it14")
