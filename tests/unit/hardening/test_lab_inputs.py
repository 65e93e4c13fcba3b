"""Issue #8, items 1, 2, 4, 5 (inputs): every repro of the issue as a lab or policy file, refused in the first
validation pass with a message naming file, object and field; nothing reads outside the lab's folder."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from lab.labfile import LabFileError, load_lab_file, parse_lab
from lab.limits import LIMITS_ENV, default_limits
from policy_dataplane.policy.documents import DocumentsInvalid, load_files, load_text

BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def problems(data: object, base: Path = Path(".")) -> str:
    with pytest.raises(LabFileError) as info:
        parse_lab(data, "lab.yaml", base)
    return str(info.value)


def lab_file(tmp_path: Path, text: str | bytes, name: str = "lab.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# 1. injection ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("namespace", ["dev\nnetns exec npl-x-h-node1 touch PWNED", "dev\nnetns add other"])
def test_namespace_names_that_would_inject_ip_batch_commands_are_refused(namespace: str) -> None:
    message = problems({"name": "x", "namespaces": [{"name": namespace}],
                        "pods": [{"name": "a", "namespace": namespace}]})
    assert "namespace" in message and "must be a DNS label" in message
    assert "field name" in message and "field namespace" in message


@pytest.mark.parametrize("labels, what", [
    ({"app": "web\nnft flush ruleset"}, "label value"),
    ({"a b": "x"}, "label key"),
    ({'x"; y': "1"}, "label key"),
    ({"app": "x" * 64}, "label value"),
])
def test_label_keys_and_values_follow_the_kubernetes_rules(labels: dict[str, str], what: str) -> None:
    for section in ("namespaces", "pods", "externals"):
        item: dict[str, object] = {"name": "a", "labels": labels}
        message = problems({"name": "x", section: [item]})
        assert what in message and "field labels" in message


def test_service_account_names_are_dns_subdomains() -> None:
    assert "serviceAccountName" in problems({"pods": [{"name": "a", "serviceAccountName": "a;b"}]})


# 2. files outside the lab -------------------------------------------------------------------------------------
def test_apply_paths_must_stay_inside_the_lab_files_folder(tmp_path: Path) -> None:
    (tmp_path / "inside.yaml").write_text("kind: List\n")
    (tmp_path / "sub").mkdir()
    os.symlink("/etc/passwd", tmp_path / "link.yaml")
    message = problems({"apply": ["/etc/shadow", "../../etc/passwd", "link.yaml", "sub", "inside.yaml"]}, tmp_path)
    assert "apply[0]: '/etc/shadow' is outside the lab file's folder" in message
    assert "apply[1]: '../../etc/passwd' is outside" in message
    assert "apply[2]: 'link.yaml' is outside" in message  # a symlink out counts as outside
    assert "apply[3]: no regular file 'sub'" in message
    assert "apply[4]" not in message


def test_apply_paths_no_file_system_can_hold_are_refused_not_raised(tmp_path: Path) -> None:
    message = problems({"apply": ["a\0b.yaml", "a" * 300]}, tmp_path)  # found by the hostile-input property
    assert "apply[0]: 'a\\x00b.yaml' holds a NUL byte" in message
    assert "apply[1]: 'aaaa" in message and "File name too long" in message


# 4. limits and capacity ---------------------------------------------------------------------------------------
def test_too_many_hosts_fail_fast_and_say_how_to_raise_the_limit() -> None:
    started = time.perf_counter()
    message = problems({"hosts": 100_000_000, "fabric": "10.0.0.0/8"})
    assert time.perf_counter() - started < 2
    assert "100000000 hosts is more than the limit of 64" in message and LIMITS_ENV in message
    assert "more than the limit" in problems({"hosts": 100_000, "fabric": "10.0.0.0/8"})


def test_a_50000_pod_file_fails_up_front() -> None:
    pods = [{"name": f"p{i}", "replicas": 10_000} for i in range(5)]
    started = time.perf_counter()
    message = problems({"hosts": 3, "pods": pods})
    assert time.perf_counter() - started < 2
    assert "50000 pods is more than the limit of 5000" in message
    raised = problems({"hosts": 3, "pods": pods, "limits": {"pods": 60_000}})
    assert "50000 pods do not fit: 3 hosts can claim 60 blocks of /26" in raised


def test_limits_can_be_raised_in_the_lab_file_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_lab({"hosts": 70, "fabric": "10.99.0.0/23", "limits": {"hosts": 100}}, "f", Path("."))
    assert len(spec.host_names()) == 70
    monkeypatch.setenv(LIMITS_ENV, "hosts=100, pods=9")
    assert default_limits().hosts == 100 and default_limits().pods == 9
    assert len(parse_lab({"hosts": 70, "fabric": "10.99.0.0/23"}, "f", Path(".")).host_names()) == 70
    monkeypatch.setenv(LIMITS_ENV, "hostz=1")
    assert "NETPOL_LAB_LIMITS: 'hostz=1' must be NAME=N" in problems({"hosts": 1})


def test_strict_affinity_capacity_is_checked_per_host() -> None:
    message = problems({"hosts": 2, "ipam": {"maxBlocksPerHost": 1, "strictAffinity": True},
                        "pods": [{"name": "a", "replicas": 65, "host": "node1"}]})
    assert "host node1: field ipam.maxBlocksPerHost: 65 pods" in message


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(LabFileError, match="expands to more than"):
        load_lab_file(lab_file(tmp_path, BOMB))
    with pytest.raises(DocumentsInvalid, match="expands to more than"):
        load_text(BOMB, "bomb.yaml")
    assert time.perf_counter() - started < 2


# 5. clean errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("name: a\nhosts: 1\nname: b\n", "duplicate key 'name'"),
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("name: a\n---\nname: b\n", "holds 2 YAML documents"),
    ("&a [*a]", "recursive alias"),
    ("[" * 500 + "]" * 500, "nested deeper than"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text"),
    ("name: x\nhosts: 1\nunknown: 2\n", "field unknown"),
])
def test_bad_lab_files_give_clean_errors(tmp_path: Path, text: str | bytes, expected: str) -> None:
    with pytest.raises(LabFileError, match=expected):
        load_lab_file(lab_file(tmp_path, text))


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    for path in ("/dev/zero", "/dev/null", str(tmp_path)):
        with pytest.raises(LabFileError, match="not a regular file"):
            load_lab_file(path)
        with pytest.raises(DocumentsInvalid, match="not a regular file"):
            load_files([path])
    with pytest.raises(LabFileError, match="cannot read"):
        load_lab_file(tmp_path / "missing.yaml")


def test_files_above_the_size_limit_are_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LIMITS_ENV, "fileBytes=100")
    with pytest.raises(LabFileError, match="more than the limit of 100"):
        load_lab_file(lab_file(tmp_path, "name: x\n" + "# padding\n" * 20))


POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: dev%s}
spec: {podSelector: {}}
"""


@pytest.mark.parametrize("text, expected", [
    (POLICY % ", colour: red", "metadata.colour: unknown field"),
    ("", "holds no YAML document"),
    ("---\n---\n", "holds no YAML document"),
    (POLICY.replace("kind: NetworkPolicy", "kind: NetworkPolicy\nkind: Pod"), "duplicate key 'kind'"),
    (BOMB, "expands to more than"),
])
def test_bad_policy_files_give_clean_errors(text: str, expected: str) -> None:
    with pytest.raises(DocumentsInvalid, match=expected):
        load_text(text, "policy.yaml")


def test_server_set_metadata_is_still_accepted() -> None:
    meta = ", uid: 1-2, resourceVersion: '7', creationTimestamp: null, generation: 2"
    assert len(load_text(POLICY % meta)) == 1


def test_binary_policy_files_give_clean_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(pickle.dumps({"x": 1}) + b"\xff\xfe")
    with pytest.raises(DocumentsInvalid, match="not UTF-8 text"):
        load_files([path])
