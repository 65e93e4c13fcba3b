"""The small lab the topology integration tests build (also imported by a child process)."""

from __future__ import annotations

from topology.model import TopologyPlan, plan_fabric, plan_node, plan_pod


def make_plan(lab: str) -> TopologyPlan:
    return TopologyPlan(
        lab=lab,
        fabric=plan_fabric(lab, "10.77.0.0/24"),
        nodes=(
            plan_node(lab, "h1", "host", "10.77.0.1/24"),
            plan_node(lab, "h2", "host", "10.77.0.2/24"),
            plan_node(lab, "srv", "external", "10.77.0.100/24"),
        ),
        pods=(
            plan_pod(lab, "dev", "web", "h1", "10.210.0.1", [(80, "TCP", "http"), (53, "UDP", "dns")]),
            plan_pod(lab, "dev", "api", "h1", "10.210.0.2", [(8080, "TCP")]),
            plan_pod(lab, "prod", "db", "h2", "10.210.0.65", [(5432, "TCP"), (9, "SCTP")]),
        ),
    )
