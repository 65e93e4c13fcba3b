"""A relabelled pod keeps its plumbing: the controller reuses its desired state only for label changes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lab.controller.daemon import pod_shape

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "dev", "labels": {"app": "web"}, "annotations": {"a": "1"}},
       "spec": {"nodeName": "node1", "containers": [{"name": "main", "ports": [{"containerPort": 80}]}]}}

labels = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=4)


@given(labels)
def test_a_label_change_leaves_the_shape_alone(new_labels: dict[str, str]) -> None:
    relabelled = {**POD, "metadata": {**POD["metadata"], "labels": new_labels}}
    assert pod_shape(relabelled) == pod_shape(POD)


def test_annotations_spec_and_ports_change_the_shape() -> None:
    docker = {**POD, "metadata": {**POD["metadata"], "annotations": {"netpol-lab.io/runtime": "docker"}}}
    moved = {**POD, "spec": {**POD["spec"], "nodeName": "node2"}}
    ported = {**POD, "spec": {**POD["spec"], "containers": [{"name": "main", "ports": [{"containerPort": 81}]}]}}
    assert len({pod_shape(POD), pod_shape(docker), pod_shape(moved), pod_shape(ported)}) == 4
