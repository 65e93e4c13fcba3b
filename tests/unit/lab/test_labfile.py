from pathlib import Path

import pytest
import yaml

from lab.labfile import LabFileError, load_lab_file, parse_lab

DEMO = Path(__file__).parents[3] / "lab" / "labs" / "demo.yaml"


def problems_of(data: dict, tmp_path: Path = Path(".")) -> list[str]:
    with pytest.raises(LabFileError) as info:
        parse_lab(data, "lab.yaml", tmp_path)
    return info.value.problems


def test_demo_lab_is_valid():
    spec = load_lab_file(DEMO)
    assert spec.name == "demo"
    assert spec.host_names() == ["node1", "node2", "node3"]
    assert sorted(f"{p.namespace}/{n}" for p, n in spec.pod_instances()) == [
        "dev/api", "dev/db", "dev/web", "prod/api", "prod/db", "prod/web"]
    assert [e.name for e in spec.model.externals] == ["tasks"]


def test_replicas_get_indexed_names():
    spec = parse_lab({"name": "x", "pods": [{"name": "web", "replicas": 3}]}, "f", Path("."))
    assert [n for _, n in spec.pod_instances()] == ["web-0", "web-1", "web-2"]


def test_unknown_field_names_file_object_and_field():
    with pytest.raises(LabFileError) as info:
        parse_lab({"name": "x", "pods": [{"name": "web", "namespace": "default", "colour": "red"}]}, "my.yaml", Path("."))
    message = str(info.value)
    assert "my.yaml" in message
    assert "pod default/web: field colour" in message


def test_bad_cidr_is_reported_on_its_field():
    problems = problems_of({"ipam": {"pool": "10.0.0.1/16"}})
    assert any(p.startswith("lab: field ipam.pool") and "host bits" in p for p in problems)


def test_all_problems_are_reported_at_once():
    problems = problems_of({
        "name": "Bad_Name",
        "hosts": [{"name": "a"}, {"name": "a"}],
        "pods": [{"name": "p", "namespace": "nowhere", "host": "zz", "ip": "10.1.1.1"}],
    })
    text = "\n".join(problems)
    assert "field name" in text and "duplicate host name" in text
    assert "namespace 'nowhere' is not declared" in text
    assert "no host named 'zz'" in text
    assert "outside the pod pool" in text


def test_pool_too_small():
    problems = problems_of({"ipam": {"pool": "10.1.0.0/30", "blockSize": 30}, "pods": [{"name": "p", "replicas": 5}]})
    assert any("holds 4 addresses, the lab has 5 pods" in p for p in problems)


def test_fixed_ip_taken_twice():
    problems = problems_of({"pods": [{"name": "a", "ip": "192.168.0.5"}, {"name": "b", "ip": "192.168.0.5"}]})
    assert any("pod default/b: field ip: 192.168.0.5 is already taken by pod default/a" in p for p in problems)


def test_external_inside_pool_is_rejected():
    problems = problems_of({"externals": [{"name": "x", "ip": "192.168.1.1"}]})
    assert any(p.startswith("external x: field ip") and "inside the pod pool" in p for p in problems)


def test_apply_files_must_exist(tmp_path):
    problems = problems_of({"apply": ["missing.yaml"]}, tmp_path)
    assert any("apply[0]" in p and "missing.yaml" in p for p in problems)


def test_an_apply_name_too_long_for_the_file_system_is_a_clean_problem(tmp_path):
    # Found by the hostile-input test: a 300-character name made stat() raise ENAMETOOLONG.
    problems = problems_of({"apply": ["a" * 300]}, tmp_path)
    assert any("apply[0]" in p and "cannot name a file" in p and "File name too long" in p for p in problems), problems


def test_yaml_error_names_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(LabFileError) as info:
        load_lab_file(bad)
    assert str(bad) in str(info.value) and "not valid YAML" in str(info.value)


def test_round_trip_through_yaml_dump():
    data = yaml.safe_load(DEMO.read_text())
    spec = parse_lab(data, "demo", DEMO.parent)
    again = parse_lab(spec.model.model_dump(mode="json"), "demo", DEMO.parent)
    assert again.model == spec.model


def test_command_line_overrides_are_validated_like_the_file() -> None:
    from lab.labfile import with_overrides

    spec = with_overrides(load_lab_file(DEMO), dataplane="iptables", layout="route-reflector", name="demo2")
    assert (spec.name, spec.model.dataplane, spec.model.bgp.layout) == ("demo2", "iptables", "route-reflector")
    assert spec.model.pods == load_lab_file(DEMO).model.pods
    with pytest.raises(LabFileError, match="field name"):
        with_overrides(load_lab_file(DEMO), name="Not_Valid")
    assert with_overrides(load_lab_file(DEMO), engine="mininet").model.engine == "mininet"
    with pytest.raises(LabFileError, match="unknown topology engine 'ovs'"):
        with_overrides(load_lab_file(DEMO), engine="ovs")


def test_host_ports_are_checked_like_pod_ports() -> None:
    spec = parse_lab({"hostPorts": [{"name": "ssh", "containerPort": 22}]}, "lab.yaml", Path("."))
    assert [p.containerPort for p in spec.model.hostPorts] == [22]
    with pytest.raises(LabFileError) as err:
        parse_lab({"hostPorts": [{"name": "ssh", "containerPort": 22}, {"name": "ssh", "containerPort": 2222}]},
                  "lab.yaml", Path("."))
    assert "lab: field ports: duplicate port name 'ssh'" in str(err.value)
