"""Multi-document loading: every problem named by file, document, object and field; all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_dataplane.policy.documents import DocumentsInvalid, load_files, load_text, object_key
from policy_dataplane.policy.model import Namespace, NetworkSet, Pod, Policy, Tier

GOOD = """
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: dev, labels: {app: web}}
spec: {containers: [{name: c}]}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: office, namespace: dev}
spec: {nets: [192.0.2.0/24]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: dev}
spec: {podSelector: {}}
"""

BAD_POD = """
apiVersion: v1
kind: Pod
metadata: {name: Bad_Pod, namespace: dev}
spec: {containers: [{name: c}]}
"""


def test_multi_document_text_in_order_skipping_empty_documents() -> None:
    objects = load_text(GOOD)
    assert [type(o) for o in objects] == [Namespace, Pod, Tier, NetworkSet, Policy]


def test_list_documents_are_unpacked() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n" \
           "- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n"
    assert [o.name for o in load_text(text)] == ["a", "b"]  # type: ignore[union-attr]


def test_one_bad_object_in_one_file_loads_nothing_and_names_file_document_object_and_field(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("name: dev}", "name: dev2}", 1) + "---\n" + BAD_POD)
    with pytest.raises(DocumentsInvalid) as err:
        load_files([good, bad])
    (problem,) = [p for p in err.value.problems if "Bad_Pod" in p.object]
    assert problem.source == f"{bad}#7"
    assert problem.object == "Pod dev/Bad_Pod"
    assert problem.field == "metadata.name"
    assert "DNS subdomain" in problem.message
    assert "nothing applied" in str(err.value)


def test_every_problem_is_reported_at_once() -> None:
    text = BAD_POD + "---\n" + BAD_POD.replace("Bad_Pod", "Also_Bad") + "---\napiVersion: v9\nkind: Thing\nmetadata: {name: x}\n"
    with pytest.raises(DocumentsInvalid) as err:
        load_text(text, "f.yaml")
    messages = [str(p) for p in err.value.problems]
    assert len(messages) == 3
    assert any("Bad_Pod" in m for m in messages) and any("Also_Bad" in m for m in messages)
    assert any("unknown apiVersion/kind v9 Thing" in m for m in messages)


def test_yaml_errors_missing_files_and_non_mappings() -> None:
    with pytest.raises(DocumentsInvalid, match="not valid YAML"):
        load_text("a: [unclosed", "f.yaml")
    with pytest.raises(DocumentsInvalid, match="cannot read"):
        load_files(["/nonexistent/file.yaml"])
    with pytest.raises(DocumentsInvalid, match="must be a mapping"):
        load_text("- just\n- a list\n")


def test_duplicates_are_rejected_but_same_name_different_kind_is_fine() -> None:
    with pytest.raises(DocumentsInvalid, match="duplicate"):
        load_text(GOOD + "---\n" + GOOD.split("---")[0])
    calico_same_name = ("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: dev}\n"
                        "spec: {selector: all()}\n")
    objects = load_text(GOOD + "---\n" + calico_same_name)
    keys = {object_key(o) for o in objects}
    assert len(keys) == len(objects)


def test_missing_required_fields() -> None:
    with pytest.raises(DocumentsInvalid) as err:
        load_text("apiVersion: v1\nkind: Namespace\nmetadata: {}\n")
    assert "metadata.name: is required" in str(err.value)
    with pytest.raises(DocumentsInvalid) as err:
        load_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nspec: {}\n")
    assert "metadata: Field required" in str(err.value)


def test_pod_addresses_from_annotation_and_status() -> None:
    (pod,) = load_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {cni.projectcalico.org/ipAddrs: '[\"10.0.0.5\"]'}}\n"
        "spec: {containers: [{name: c, image: busybox, ports: [{name: dns, containerPort: 53, protocol: UDP}]}],"
        " serviceAccountName: app}\nstatus: {podIP: 10.0.0.5, podIPs: [{ip: 'fd00::5'}]}\n"
    )
    assert isinstance(pod, Pod)
    assert pod.namespace == "default"
    assert [str(ip) for ip in pod.ips] == ["10.0.0.5", "fd00::5"]
    assert pod.named_port("dns", 17) == 53 and pod.named_port("dns", 6) is None
    assert pod.service_account == "app"


def test_namespace_gets_its_name_label() -> None:
    (ns,) = load_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: dev, labels: {a: b}}\n")
    assert isinstance(ns, Namespace)
    assert dict(ns.labels) == {"a": "b", "kubernetes.io/metadata.name": "dev"}
