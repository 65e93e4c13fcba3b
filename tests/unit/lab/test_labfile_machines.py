"""`store:` and `machines:` in lab files: every mistake caught in the first validation pass, by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.labfile import LabFileError, parse_lab
from lab.machines import MachineError, check_machine, hosts_on

ETCD = {"backend": "etcd", "endpoints": ["http://127.0.0.1:23790"]}
TWO = [{"name": "ma", "underlay": "10.250.0.1/24"}, {"name": "mb", "underlay": "10.250.0.2/24"}]


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(LabFileError) as err:
        parse_lab({"name": "t", **data}, "t.yaml", Path("."))
    return err.value.problems


def test_defaults_are_one_machine_on_sqlite() -> None:
    spec = parse_lab({"name": "t"}, "t.yaml", Path("."))
    assert spec.model.store.backend == "sqlite" and spec.model.machine_names() == ["local"]
    assert check_machine(spec.model, None, "t.yaml") is None


def test_hosts_split_across_machines() -> None:
    spec = parse_lab({"name": "t", "store": ETCD, "machines": TWO,
                      "hosts": [{"name": "node1"}, {"name": "node2", "machine": "mb"}]}, "t.yaml", Path("."))
    assert spec.model.machine_of() == {"node1": "ma", "node2": "mb"}  # the first machine unless named
    assert hosts_on(spec.model, "mb") == ["node2"] and hosts_on(spec.model, None) == ["node1", "node2"]
    assert check_machine(spec.model, "mb", "t.yaml") == "mb"
    with pytest.raises(MachineError, match="--machine"):
        check_machine(spec.model, None, "t.yaml")
    with pytest.raises(MachineError, match="no machine 'mc'"):
        check_machine(spec.model, "mc", "t.yaml")


@pytest.mark.parametrize(("data", "expected"), [
    ({"store": {"backend": "etcd"}}, "field store.endpoints: the etcd store needs at least one endpoint"),
    ({"store": {"backend": "etcd", "endpoints": ["127.0.0.1:2379"]}}, "field store.endpoints.0: etcd endpoint"),
    ({"store": {"backend": "etcd", "endpoints": ["http://h:99999"]}}, "field store.endpoints.0: etcd endpoint"),
    ({"store": {"backend": "sqlite", "endpoints": ["http://h:1"]}}, "takes no endpoints"),
    ({"store": {"backend": "redis"}}, "unknown store backend 'redis'"),
    ({"store": ETCD, "machines": [TWO[0], {**TWO[1], "name": "ma"}]}, "machine ma: field name: duplicate"),
    ({"store": ETCD, "machines": [TWO[0], {**TWO[1], "name": "Bad_1"}]}, "machine Bad_1: field name"),
    ({"store": ETCD, "machines": [TWO[0], {"name": "mb"}]}, "machine mb: field underlay"),
    ({"store": ETCD, "machines": [TWO[0], {**TWO[1], "underlay": "10.250.0.1/24"}]}, "share underlay address"),
    ({"store": ETCD, "machines": [TWO[0], {**TWO[1], "underlay": "10.251.0.2/24"}]}, "share one network"),
    ({"machines": TWO}, "field store: a lab on several machines needs a shared store"),
    ({"store": ETCD, "machines": TWO, "hosts": [{"name": "node1", "machine": "mc"}]},
     "host node1: field machine: unknown machine 'mc'"),
])
def test_mistakes_name_the_field(data: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in _problems(data)), _problems(data)


def test_the_two_vm_lab_file_is_valid() -> None:
    from lab.labfile import load_lab_file

    spec = load_lab_file(Path(__file__).parents[3] / "lab" / "labs" / "two-vms.yaml")
    assert spec.model.machine_of() == {"node1": "m1", "node2": "m2", "node3": "m2"}
    assert [m.underlayDevice for m in spec.model.machines] == ["eth1", "eth1"]
