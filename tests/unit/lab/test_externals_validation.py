"""What `lab external add/remove` refuses before anything changes, and how it keeps every node's address
(lab/externals.py), on a lab recorded in a private store: no kernel, no root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import pipeline
from lab.externals import ExternalError, add_external, pinned_spec, remove_external, validated_spec
from lab.labfile import parse_lab
from lab.plan import plan_node_addresses_from_model
from lab.runtime import LabRuntime
from topology import names

LAB = "xv1"
SPEC = {"name": LAB, "hosts": 2, "fabric": "10.99.0.0/24",
        "externals": [{"name": "tasks"}, {"name": "crm", "ports": [{"containerPort": 443}]}]}


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabRuntime]:
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    runtime = pipeline._record(parse_lab(SPEC, "test", tmp_path), names.LabPaths.for_lab(LAB))
    try:
        yield runtime
    finally:
        runtime.close()


def addresses(runtime: LabRuntime, model: object = None) -> dict[str, str]:
    return {n.name: str(n.ip.ip) for n in plan_node_addresses_from_model(LAB, model or runtime.spec)}  # type: ignore[arg-type]


def test_bad_externals_are_refused_with_the_field_and_nothing_changes(runtime: LabRuntime) -> None:
    revision = runtime.store.revision
    cases = [
        ({"name": "node1"}, "external node1: field name: the name is also a host's"),
        ({"name": "crm"}, "external crm: field name: duplicate external host name"),
        ({"name": "Bad_Name"}, "external Bad_Name: field name: must be a DNS label"),
        ({"name": "api", "ip": "192.168.0.9"}, "field ip: 192.168.0.9 is inside the pod pool"),
        ({"name": "api", "ports": [{"containerPort": 99999}]}, "external api: field ports[0].containerPort: Input should"),
        ({"name": "api", "shell": "rm -rf /"}, "external api: field shell: Extra inputs are not permitted"),
        ("api", "an external is a mapping with a name"),
    ]
    for external, expected in cases:
        with pytest.raises(ExternalError) as refused:
            add_external(runtime, external)  # type: ignore[arg-type]
        assert expected in str(refused.value), (external, str(refused.value))
    with pytest.raises(ExternalError, match="no external named 'nope' .externals: tasks, crm."):
        remove_external(runtime, "nope")
    assert runtime.store.revision == revision and [e.name for e in runtime.spec.externals] == ["tasks", "crm"]


def test_an_address_another_node_has_is_refused(runtime: LabRuntime) -> None:
    taken = addresses(runtime)["node1"]
    data = pinned_spec(runtime)
    data["externals"].append({"name": "api", "ip": taken})
    with pytest.raises(ExternalError, match="nodes would change address: node1"):
        validated_spec(runtime, data, "adding external api")


def test_every_node_keeps_its_address_when_an_external_comes_or_goes(runtime: LabRuntime) -> None:
    before = addresses(runtime)
    added = pinned_spec(runtime)
    added["externals"].append({"name": "api"})
    after_add = addresses(runtime, validated_spec(runtime, added, "adding external api"))
    assert {n: after_add[n] for n in before} == before and after_add["api"] not in before.values()
    removed = pinned_spec(runtime)
    removed["externals"] = [e for e in removed["externals"] if e["name"] != "tasks"]  # the first external
    after_remove = addresses(runtime, validated_spec(runtime, removed, "removing external tasks"))
    assert after_remove == {n: ip for n, ip in before.items() if n != "tasks"}  # crm did not move up
