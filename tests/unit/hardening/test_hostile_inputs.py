"""Issue #8, property: hostile lab files and policy files (odd names, odd types, huge numbers, random bytes)
give a clean error or a valid lab, never a traceback. Validation is pure, so it runs before anything is
created; the root test (tests/integration/lab/test_hardening.py) runs a few of these through `lab up`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.labfile import LabFileError, load_lab_file, parse_lab
from policy_dataplane.policy.documents import DocumentsInvalid, load_text

HOSTILE_TEXT = st.one_of(
    st.sampled_from(["dev\nnetns add other", "dev\nnetns exec x touch PWNED", "../../etc", "x;y", 'a"b', "",
                     "a" * 300, "默认", "-a-", "a b", "$(id)", "`id`", "\0", "{}", "*", "node1", "default"]),
    st.text(max_size=40),
)
ODD = st.one_of(HOSTILE_TEXT, st.integers(min_value=-(10**12), max_value=10**12), st.floats(allow_nan=True),
                st.booleans(), st.none(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                                 st.integers(),
                                                                                                 max_size=3))
NAME = st.one_of(st.sampled_from(["dev", "web", "a-1", "node1"]), HOSTILE_TEXT)
LABELS = st.dictionaries(NAME, st.one_of(NAME, ODD), max_size=3)
PORT = st.fixed_dictionaries({"containerPort": st.one_of(st.integers(-5, 70000), ODD)},
                             optional={"name": NAME, "protocol": st.one_of(st.sampled_from(["TCP", "UDP", "icmp"]), ODD)})
POD = st.fixed_dictionaries({"name": NAME}, optional={
    "namespace": NAME, "labels": LABELS, "replicas": st.one_of(st.integers(-3, 10**9), ODD),
    "host": NAME, "ports": st.lists(PORT, max_size=2), "ip": st.one_of(st.ip_addresses(v=4).map(str), ODD),
    "serviceAccountName": NAME})
LAB = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.sampled_from(["hx", "demo"]), NAME),
    "hosts": st.one_of(st.integers(-3, 10**9), st.lists(st.fixed_dictionaries({"name": NAME}), max_size=3), ODD),
    "fabric": st.one_of(st.sampled_from(["10.0.0.0/8", "10.99.0.0/30", "0.0.0.0/0"]), ODD),
    "ipam": st.one_of(st.fixed_dictionaries({}, optional={"pool": st.sampled_from(["192.168.0.0/16", "10.0.0.0/31"]),
                                                       "blockSize": st.integers(0, 40),
                                                       "maxBlocksPerHost": st.integers(-1, 10**6)}), ODD),
    "namespaces": st.lists(st.fixed_dictionaries({"name": NAME}, optional={"labels": LABELS}), max_size=3),
    "pods": st.lists(POD, max_size=4),
    "externals": st.lists(st.fixed_dictionaries({"name": NAME}, optional={"ip": ODD, "ports": st.lists(PORT, max_size=2)}),
                          max_size=2),
    "apply": st.lists(st.one_of(st.sampled_from(["/etc/shadow", "../../etc/passwd", "/dev/zero", "."]), HOSTILE_TEXT),
                      max_size=2),
    "limits": st.one_of(st.fixed_dictionaries({}, optional={"hosts": st.integers(-1, 10**9),
                                                          "pods": st.integers(-1, 10**9)}), ODD),
    "dataplane": st.one_of(st.sampled_from(["nftables", "iptables"]), ODD),
    "bgp": st.one_of(st.fixed_dictionaries({}, optional={"layout": st.sampled_from(["mesh", "route-reflector", "x"]),
                                                       "asn": st.integers(-1, 2**33)}), ODD),
})

MUTATIONS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@MUTATIONS
@given(LAB)
def test_hostile_lab_data_is_valid_or_a_clean_error(data: dict[str, Any]) -> None:
    try:
        spec = parse_lab(data, "hostile.yaml", Path("/nonexistent"))
    except LabFileError as exc:
        assert exc.problems and "hostile.yaml" in str(exc)
        return
    # accepted: then every name is one the kernel scripts take as a single word
    for pod, name in spec.pod_instances():
        assert "\n" not in pod.namespace + name and " " not in pod.namespace + name


@MUTATIONS
@given(st.one_of(st.binary(max_size=300), LAB.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode())))
def test_hostile_lab_files_are_valid_or_a_clean_error(tmp_path_factory: Any, content: bytes) -> None:
    path = tmp_path_factory.mktemp("hostile") / "lab.yaml"
    path.write_bytes(content)
    try:
        load_lab_file(path)
    except LabFileError as exc:
        assert str(path) in str(exc)


DOC = st.fixed_dictionaries({
    "apiVersion": st.one_of(st.sampled_from(["v1", "networking.k8s.io/v1", "projectcalico.org/v3"]), ODD),
    "kind": st.one_of(st.sampled_from(["Pod", "Namespace", "NetworkPolicy", "GlobalNetworkPolicy", "Tier",
                                       "NetworkSet", "GlobalNetworkSet", "List"]), ODD),
    "metadata": st.one_of(st.fixed_dictionaries({"name": NAME}, optional={"namespace": NAME, "labels": LABELS,
                                                                        "colour": ODD}), ODD),
}, optional={"spec": st.one_of(st.fixed_dictionaries({}, optional={
    "selector": HOSTILE_TEXT, "tier": NAME, "order": ODD, "types": st.lists(st.sampled_from(["Ingress", "Egress", "x"])),
    "podSelector": st.one_of(st.just({}), ODD),
    "ingress": st.lists(st.fixed_dictionaries({"action": st.sampled_from(["Allow", "Deny", "x"])}, optional={
        "protocol": ODD, "source": st.fixed_dictionaries({}, optional={"nets": st.lists(HOSTILE_TEXT, max_size=2),
                                                                       "selector": HOSTILE_TEXT})}), max_size=2),
}), ODD)})


@MUTATIONS
@given(st.one_of(st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
                 st.lists(DOC, min_size=1, max_size=3).map(lambda ds: yaml.safe_dump_all(ds, allow_unicode=True))))
def test_hostile_policy_files_are_valid_or_a_clean_error(text: str) -> None:
    try:
        load_text(text, "hostile.yaml")
    except DocumentsInvalid as exc:
        assert exc.problems and "hostile.yaml" in str(exc)
