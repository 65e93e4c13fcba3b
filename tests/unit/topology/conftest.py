"""Shared plans for the topology unit tests (pure: no root, nothing created)."""

from __future__ import annotations

import pytest

from topology.model import TopologyPlan, plan_fabric, plan_node, plan_pod

LAB = "tt1"


def small_plan(**overrides: object) -> TopologyPlan:
    fabric = plan_fabric(LAB, "10.99.0.0/24")
    nodes = (
        plan_node(LAB, "h1", "host", "10.99.0.1/24"),
        plan_node(LAB, "h2", "host", "10.99.0.2/24"),
        plan_node(LAB, "srv", "external", "10.99.0.10/24"),
        plan_node(LAB, "rr1", "reflector", "10.99.0.20/24"),
    )
    pods = (
        plan_pod(LAB, "dev", "web", "h1", "10.200.0.1", [(80, "TCP", "http"), (53, "UDP")]),
        plan_pod(LAB, "dev", "api", "h1", "10.200.0.2", [(8080, "TCP")]),
        plan_pod(LAB, "prod", "db", "h2", "10.200.0.65", [(5432, "TCP"), (9, "SCTP")]),
    )
    values: dict[str, object] = {"lab": LAB, "fabric": fabric, "nodes": nodes, "pods": pods}
    values.update(overrides)
    return TopologyPlan(**values)  # type: ignore[arg-type]


@pytest.fixture
def plan() -> TopologyPlan:
    return small_plan()
