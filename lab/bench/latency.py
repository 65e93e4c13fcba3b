"""Policy latency figures: write -> enforcement on every affected path, measured by traffic, for a new
policy, a label change and a pod creation, through the lab as a user would make them.

New policy and label change are `lab policy-latency`'s own changes (`lab.latency_changes`). A pod creation
is `lab apply` of a new pod carrying one bank service's labels (so that service's policy selects it), at
the address the lab's IPAM will give it (asked for explicitly, so probes can aim at it before it exists);
its paths did not exist before, and each is timed to its first probe with the oracle's verdict once the
pod is up (`traffic.policy_latency`). Reverting deletes the pod.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import yaml

from lab.addresses import ipam_of
from lab.apply import apply_sources, delete_keys, key_for
from lab.latency_changes import in_lab, lab_changes
from lab.runtime import LabRuntime
from lab.traffic_hooks import expected_verdicts
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.policy_latency import AffectedPath, Change, ChangeOutcome

CHANGES = {"policy": "new policy", "label": "label change", "pod": "pod creation"}
NEW_POD = "bench-new"


def _new_pod_document(template: dict[str, Any], name: str, host: str, ip: str) -> dict[str, Any]:
    from lab.objects import IP_ANNOTATION

    metadata = {"name": name, "namespace": template["metadata"]["namespace"],
                "labels": dict(template["metadata"].get("labels") or {}),
                "annotations": {IP_ANNOTATION: json.dumps([ip])}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {**template["spec"], "nodeName": host}}


@contextmanager
def pod_creations(lab: str, template: ProbeEndpoint, sources: Sequence[ProbeEndpoint], port: int,
                  ) -> Iterator[Callable[[int], Change]]:
    """Yields `i -> Change`: the i-th change creates pod `bench-new-i` like `template`, on the i-th host."""
    from lab.stored_world import model_objects
    from policy_dataplane.policy.bulk import matrix
    from policy_dataplane.policy.documents import load_sources
    from policy_dataplane.policy.model import Pod
    from policy_dataplane.policy.world import World
    from topology.model import plan_pod

    def make(i: int) -> Change:
        runtime = LabRuntime.open(lab)
        try:
            doc = runtime.store.get_object(key_for("pod", template.name))
            assert doc is not None, template.name
            namespace, name = doc["metadata"]["namespace"], f"{NEW_POD}-{i}"
            hosts = runtime.host_names()
            host = hosts[i % len(hosts)]
            ip = ipam_of(runtime).allocate(f"{namespace}/{name}", host)  # in memory only: what apply will give
            write = [(f"{name}.yaml", yaml.safe_dump(_new_pod_document(doc, name, host, str(ip))))]
            # the world once the pod runs (a dry run leaves new pods out: they have no address yet)
            new = load_sources(write)[0]
            assert isinstance(new, Pod)
            pod = dataclasses.replace(new, ips=(ip,), node=host)
            after_world = World.from_objects([*model_objects(runtime), pod])
        finally:
            runtime.close()
        endpoint = ProbeEndpoint(f"{namespace}/{name}", plan_pod(lab, namespace, name, host, ip).netns, ip,
                                 "pod", namespace, host)
        m = matrix(after_world, "tcp", port, [s.name for s in sources] + [endpoint.name])
        paths = tuple(AffectedPath(Probe(s, endpoint, Protocol.TCP, port), after=bool(m.allowed[k, len(sources)]),
                                   before=None) for k, s in enumerate(sources))
        key = key_for("pod", endpoint.name)

        def apply() -> int | None:
            return in_lab(lab, lambda r: apply_sources(r, write))

        def revert() -> None:
            in_lab(lab, lambda r: delete_keys(r, [key]) if r.store.get_object(key) is not None else None)

        return Change(f"pod-{i}", paths, apply=apply, revert=revert)

    yield make


def probing_pods(lab: str, port: int, sources: int) -> tuple[ProbeEndpoint, list[ProbeEndpoint]]:
    """A destination pod that several pods reach, and up to `sources` probing pods: those that reach it
    (the paths a change can cut) first, then ones the policy denies (controls)."""
    from lab.traffic_hooks import probe_endpoints

    pods = sorted((e for e in probe_endpoints(lab) if e.kind == "pod"), key=lambda e: e.name)
    best: tuple[int, ProbeEndpoint, list[ProbeEndpoint]] | None = None
    for destination in pods[:20]:  # the bank's services reach ~8 each: the first few are as good as any
        others = [p for p in pods if p is not destination]
        verdicts = expected_verdicts(lab, [(s, destination) for s in others], "tcp", port)
        reaching = [s for s, ok in zip(others, verdicts, strict=True) if ok]
        denied = [s for s, ok in zip(others, verdicts, strict=True) if not ok]
        if best is None or len(reaching) > best[0]:
            best = (len(reaching), destination, [*reaching[: sources - 2], *denied[:2]][:sources])
    assert best is not None and best[0] > 0, "no pod is reached by any other: nothing to time"
    return best[1], best[2]


def measure_policy_latency(lab: str, port: int, repetitions: int, sources: int = 10,
                           progress: Callable[[int, int, str], None] | None = None,
                           ) -> dict[str, list[ChangeOutcome]]:
    """Change kind -> one outcome per repetition (probes streaming at a fixed rate over the paths)."""
    from traffic.probes import ProbeEngine
    from traffic.stream import StreamOptions, run_experiment

    destination, probing = probing_pods(lab, port, sources)
    out: dict[str, list[ChangeOutcome]] = {}
    with ProbeEngine() as engine:
        for done, kind in enumerate(CHANGES):
            if progress:
                progress(done, len(CHANGES), "policy latency")
            changes: AbstractContextManager[Callable[[int], Change]]
            if kind == "pod":
                changes = pod_creations(lab, destination, probing, port)
            else:
                changes = lab_changes(lab, "deny" if kind == "policy" else "label", destination, probing,
                                      Protocol.TCP, port)
            with changes as make:
                out[kind] = run_experiment(engine, make, repetitions, StreamOptions(rate=2000.0))
        if progress:
            progress(len(CHANGES), len(CHANGES), "policy latency")
    return out


def per_path_latencies(outcomes: Sequence[ChangeOutcome]) -> list[float | None]:
    """Every affected path's write -> first probe with the new verdict (µs); None: it never turned."""
    return [p.latency_us for o in outcomes for p in o.timed]


__all__ = ["CHANGES", "measure_policy_latency", "per_path_latencies", "pod_creations", "probing_pods"]
