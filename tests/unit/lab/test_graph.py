"""The lab graph: every node, pod and session, rendered as Mermaid, dot and a PNG."""

from __future__ import annotations

from pathlib import Path

from lab.graph import FABRIC, lab_graph, positions, save_png, to_dot, to_mermaid

STATUS = {
    "lab": "g1", "bgp": "mesh",
    "nodes": [
        {"name": "node1", "kind": "host", "fabric_ip": "10.99.0.1/24", "pods": 2, "blocks": ["10.1.0.0/26"]},
        {"name": "node2", "kind": "host", "fabric_ip": "10.99.0.2/24", "pods": 1, "blocks": ["10.1.0.64/26"]},
        {"name": "tasks", "kind": "external", "fabric_ip": "10.99.0.3/24"},
    ],
    "pods": [
        {"namespace": "dev", "name": "web", "host": "node1", "ip": "10.1.0.1"},
        {"namespace": "dev", "name": "db", "host": "node1", "ip": "10.1.0.2"},
        {"namespace": "prod", "name": "web", "host": "node2", "ip": "10.1.0.65"},
    ],
}
SESSIONS = [
    {"speaker": "node1", "peer": "node2", "state": "established"},
    {"speaker": "node2", "peer": "node1", "state": "established"},
    {"speaker": "node1", "peer": "tasks", "state": "established"},
    {"speaker": "tasks", "peer": "node1", "state": "active"},  # one end down: the session is down
]


def test_graph_holds_nodes_pods_links_and_sessions() -> None:
    g = lab_graph(STATUS, SESSIONS)
    assert set(g.nodes) == {FABRIC, "node1", "node2", "tasks", "dev/web", "dev/db", "prod/web"}
    assert g.edges["dev/db", "node1"]["kind"] == "veth" and g.edges["tasks", FABRIC]["kind"] == "link"
    assert g.edges["node1", "node2"]["established"] is True
    assert g.edges["node1", "tasks"]["established"] is False
    assert "10.99.0.0/24" in g.nodes[FABRIC]["label"]


def test_without_pods_hosts_show_their_count() -> None:
    g = lab_graph(STATUS, SESSIONS, with_pods=False)
    assert "dev/web" not in g and "2 pods" in g.nodes["node1"]["label"]


def test_mermaid_and_dot_name_everything() -> None:
    g = lab_graph(STATUS, SESSIONS)
    mermaid = to_mermaid(g)
    assert mermaid.startswith("graph LR") and "dev_web" in mermaid and "node1 -. iBGP down .- tasks" in mermaid
    dot = to_dot(g)
    assert dot.startswith('graph "g1"') and '"node1" -- "dev/web"' in dot and "color=red" in dot


def test_png_is_drawn_with_every_node_placed(tmp_path: Path) -> None:
    g = lab_graph(STATUS, SESSIONS)
    assert set(positions(g)) == set(g.nodes)
    path = save_png(g, tmp_path / "g.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
