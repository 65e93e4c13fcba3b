"""Policy changes for `lab policy-latency`, written the way a user writes them: through the lab.

- `deny`: a Calico policy cuts one destination pod off from half of the pods that reach it now (the others
  are controls); the write is `lab apply` (store, compile, program every host), the revert `lab delete`.
- `label`: a Calico policy (order 200) denies pods labelled for quarantine; the write is `lab label`.

Which paths change, and to what, is the oracle's answer before and after (so pods the lab's own policies
already deny are controls, not timed paths). Marker labels are set once before the runs and removed after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import yaml

from lab.apply import apply_sources, delete_keys, key_for, key_of, label
from lab.runtime import LabRuntime
from lab.stored_world import planned_world
from lab.traffic_hooks import expected_verdicts
from policy_dataplane.policy.bulk import matrix
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.policy_latency import AffectedPath, Change

TARGET = "netpol-lab/latency-target"
ADMITTED = "netpol-lab/latency-admitted"
QUARANTINED = "netpol-lab/latency-quarantine"
KINDS = ("deny", "label")


def in_lab(lab: str, action: Callable[[LabRuntime], Any]) -> int | None:
    """Each write opens the lab afresh: the probe stream calls it from another thread. Returns when the
    write reached the lab's controller (None: no controller took it)."""
    with LabRuntime.open(lab) as runtime:
        action(runtime)
        return runtime.handed_over_ns


# Before every Kubernetes policy (order 1000): Kubernetes policies only ever add allows, so a deny that must
# win over them is a Calico policy. Admitted sources match no rule and go on to the policies after it.
DENY_POLICY: dict[str, Any] = {
    "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "latency-deny"},
    "spec": {"order": 100, "selector": f'{TARGET} == "true"', "types": ["Ingress"],
             "ingress": [{"action": "Deny", "source": {"selector": f"!has({ADMITTED})"}}]},
}  # fmt: skip


QUARANTINE_POLICY: dict[str, Any] = {
    "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "latency-quarantine"},
    "spec": {"order": 200, "selector": f'{QUARANTINED} == "true"', "types": ["Ingress"],
             "ingress": [{"action": "Deny"}]},
}  # fmt: skip


def _source(doc: dict[str, Any], name: str) -> tuple[str, str]:
    return (name, yaml.safe_dump(doc))


def _delete_if_there(runtime: LabRuntime, sources: Sequence[tuple[str, str]]) -> None:
    keys = [key_of(yaml.safe_load(text)) for _, text in sources]
    there = [k for k in keys if runtime.store.get_object(k) is not None]
    if there:
        delete_keys(runtime, there)


@contextmanager
def lab_changes(lab: str, kind: str, destination: ProbeEndpoint, sources: Sequence[ProbeEndpoint],
                protocol: Protocol, port: int, before: Sequence[bool] | None = None,
                ) -> Iterator[Callable[[int], Change]]:
    """Yields `i -> Change` for `traffic.stream.run_experiment`; sets up before, cleans up after. `before`:
    the oracle's verdict from each source now, when the caller has it already."""
    if kind not in KINDS:
        raise ValueError(f"unknown change {kind!r} (one of {', '.join(KINDS)})")
    if before is None:
        before = expected_verdicts(lab, [(s, destination) for s in sources], protocol.value, port)
    # Of the sources that get through now, `deny` keeps half (controls) and cuts the others off.
    reaching = [s for s, allowed in zip(sources, before, strict=True) if allowed]
    admitted = reaching[: len(reaching) // 2]
    marks: list[tuple[ProbeEndpoint, dict[str, str | None]]] = [(destination, {TARGET: "true"})]
    marks += [(s, {ADMITTED: "true"}) for s in admitted]
    setup = [_source(QUARANTINE_POLICY, "latency-quarantine")] if kind == "label" else []

    def cleanup(runtime: LabRuntime) -> None:  # idempotent: also after a set-up that failed halfway
        for endpoint, labels in marks:
            label(runtime, key_for("pod", endpoint.name), dict.fromkeys(labels))
        _delete_if_there(runtime, [*setup, _source(DENY_POLICY, "latency-deny")])

    try:
        with LabRuntime.open(lab) as runtime:
            for endpoint, labels in marks:
                label(runtime, key_for("pod", endpoint.name), labels)
            if setup:
                apply_sources(runtime, setup)
            if kind == "deny":
                write = [_source(DENY_POLICY, "latency-deny")]
            else:
                pod = runtime.store.get_object(key_for("pod", destination.name))
                assert pod is not None
                labels_after = {**pod["metadata"].get("labels", {}), QUARANTINED: "true"}
                write = [_source({**pod, "metadata": {**pod["metadata"], "labels": labels_after}}, "latency-label")]
            after_world = planned_world(runtime, write).world

        refs = [s.name if s.kind == "pod" else str(s.ip) for s in sources] + [destination.name]
        m = matrix(after_world, protocol.value, None if protocol is Protocol.ICMP else port, refs)
        after = [bool(m.allowed[i, len(sources)]) for i in range(len(sources))]
        paths = tuple(AffectedPath(Probe(s, destination, protocol, port), after=a, before=b)
                      for s, b, a in zip(sources, before, after, strict=True))

        def apply() -> int | None:
            if kind == "deny":
                return in_lab(lab, lambda r: apply_sources(r, write))
            return in_lab(lab, lambda r: label(r, key_for("pod", destination.name), {QUARANTINED: "true"}))

        def revert() -> None:
            if kind == "deny":  # (gone already when the write itself failed)
                in_lab(lab, lambda r: _delete_if_there(r, write))
            else:
                in_lab(lab, lambda r: label(r, key_for("pod", destination.name), {QUARANTINED: None}))

        yield lambda i: Change(f"{kind}-{i}", paths, apply=apply, revert=revert)
    finally:
        in_lab(lab, cleanup)

__all__ = ["KINDS", "in_lab", "lab_changes", "DENY_POLICY", "QUARANTINE_POLICY"]
