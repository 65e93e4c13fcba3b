"""The lab as a graph (networkx): fabric, nodes, pods, and BGP sessions, as Mermaid, Graphviz dot or a PNG.

Pure: built from `lab status` data and the BGP session list; only `save_png` writes a file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import networkx as nx

FABRIC = "fabric"
PODS_SHOWN_UP_TO = 60  # beyond this a host shows its pod count instead of one box per pod


def lab_graph(status: dict[str, Any], sessions: Iterable[dict[str, Any]], with_pods: bool | None = None) -> nx.Graph:
    """Nodes carry `kind` (fabric, host, external, reflector, pod) and `label`; edges carry `kind` (link,
    veth, bgp) and `label`; BGP edges also `established` (both ends, or the only end reported)."""
    if with_pods is None:
        with_pods = len(status["pods"]) <= PODS_SHOWN_UP_TO
    g = nx.Graph(lab=status["lab"], layout=status["bgp"])
    g.add_node(FABRIC, kind="fabric", label=f"fabric bridge\n{_subnet(status)}")
    for node in status["nodes"]:
        extra = [node["fabric_ip"]]
        if node["kind"] == "host":
            extra += node.get("blocks", [])
            if not with_pods:
                extra.append(f"{node.get('pods', 0)} pods")
        g.add_node(node["name"], kind=node["kind"], label="\n".join([node["name"], *extra]))
        g.add_edge(node["name"], FABRIC, kind="link", label="eth0")
    if with_pods:
        for pod in status["pods"]:
            key = f"{pod['namespace']}/{pod['name']}"
            g.add_node(key, kind="pod", label=f"{key}\n{pod['ip']}", host=pod["host"])
            g.add_edge(key, pod["host"], kind="veth", label="eth0 - cali")
    for s in sessions:
        a, b = s["speaker"], s["peer"]
        if a not in g or b not in g:
            continue
        established = s["state"] == "established"
        if g.has_edge(a, b) and g.edges[a, b]["kind"] == "bgp":
            g.edges[a, b]["established"] = g.edges[a, b]["established"] and established
        else:
            g.add_edge(a, b, kind="bgp", label="iBGP", established=established)
    return g


def _subnet(status: dict[str, Any]) -> str:
    address = status["nodes"][0]["fabric_ip"] if status["nodes"] else ""
    return str(ip_interface(address).network) if address else ""


def _node_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def to_mermaid(g: nx.Graph) -> str:
    shapes = {"fabric": ("{{", "}}"), "host": ("[", "]"), "external": ("[/", "/]"), "reflector": ("([", "])"),
              "pod": ("(", ")")}
    lines = ["graph LR"]
    for name, data in g.nodes(data=True):
        left, right = shapes[data["kind"]]
        text = data["label"].replace("\n", "<br/>").replace('"', "'")
        lines.append(f'  {_node_id(name)}{left}"{text}"{right}')
    for a, b, data in g.edges(data=True):
        if data["kind"] == "bgp":
            arrow = "-. iBGP .-" if data["established"] else "-. iBGP down .-"
            lines.append(f"  {_node_id(a)} {arrow} {_node_id(b)}")
        else:
            lines.append(f"  {_node_id(a)} --- {_node_id(b)}")
    return "\n".join(lines) + "\n"


def to_dot(g: nx.Graph) -> str:
    shapes = {"fabric": "hexagon", "host": "box", "external": "parallelogram", "reflector": "ellipse",
              "pod": "box"}
    lines = [f'graph "{g.graph["lab"]}" {{', "  node [fontname=Helvetica fontsize=10];"]
    for name, data in g.nodes(data=True):
        style = ' style="rounded"' if data["kind"] == "pod" else ""
        lines.append(f'  "{name}" [shape={shapes[data["kind"]]} label="{_dot_text(data["label"])}"{style}];')
    for a, b, data in g.edges(data=True):
        if data["kind"] == "bgp":
            colour = "darkgreen" if data["established"] else "red"
            lines.append(f'  "{a}" -- "{b}" [style=dashed color={colour} label="iBGP"];')
        else:
            lines.append(f'  "{a}" -- "{b}";')
    return "\n".join(lines) + "\n}\n"


def _dot_text(text: str) -> str:
    return text.replace('"', '\\"').replace("\n", "\\n")


def positions(g: nx.Graph) -> dict[str, tuple[float, float]]:
    """Fabric in the middle, nodes on a circle, each host's pods fanned out beyond it."""
    nodes = [n for n, d in g.nodes(data=True) if d["kind"] not in ("fabric", "pod")]
    pos: dict[str, tuple[float, float]] = {FABRIC: (0.0, 0.0)}
    angle_of = {}
    for i, name in enumerate(nodes):
        angle = 2 * math.pi * i / max(len(nodes), 1)
        angle_of[name] = angle
        pos[name] = (math.cos(angle), math.sin(angle))
    by_host: dict[str, list[str]] = {}
    for name, data in g.nodes(data=True):
        if data["kind"] == "pod":
            by_host.setdefault(data["host"], []).append(name)
    spread = 2 * math.pi / max(len(nodes), 1) * 0.8
    for host, pods in by_host.items():
        for j, pod in enumerate(sorted(pods)):
            offset = (j - (len(pods) - 1) / 2) * spread / max(len(pods), 1)
            angle = angle_of.get(host, 0.0) + offset
            pos[pod] = (1.9 * math.cos(angle), 1.9 * math.sin(angle))
    return pos


def save_png(g: nx.Graph, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"fabric": "#bbbbbb", "host": "#8ecae6", "external": "#ffb703", "reflector": "#cdb4db",
               "pod": "#b7e4c7"}
    pos = positions(g)
    fig, ax = plt.subplots(figsize=(12, 10))
    plain = [(a, b) for a, b, d in g.edges(data=True) if d["kind"] != "bgp"]
    up = [(a, b) for a, b, d in g.edges(data=True) if d["kind"] == "bgp" and d["established"]]
    down = [(a, b) for a, b, d in g.edges(data=True) if d["kind"] == "bgp" and not d["established"]]
    nx.draw_networkx_edges(g, pos, edgelist=plain, ax=ax, edge_color="#999999")
    # Sessions bend away from the straight fabric links they would otherwise hide.
    curved = {"arrows": True, "arrowstyle": "-", "connectionstyle": "arc3,rad=0.25", "node_size": 2600}
    nx.draw_networkx_edges(g, pos, edgelist=up, ax=ax, style="dashed", edge_color="darkgreen", alpha=0.6, **curved)
    nx.draw_networkx_edges(g, pos, edgelist=down, ax=ax, style="dashed", edge_color="red", width=2, **curved)
    for kind, colour in colours.items():
        members = [n for n, d in g.nodes(data=True) if d["kind"] == kind]
        nx.draw_networkx_nodes(g, pos, nodelist=members, ax=ax, node_color=colour,
                               node_size=2600 if kind != "pod" else 1400, node_shape="s" if kind == "pod" else "o")
    nx.draw_networkx_labels(g, pos, labels={n: d["label"] for n, d in g.nodes(data=True)}, ax=ax, font_size=7)
    established = len(up)
    ax.set_title(f"lab {g.graph['lab']}: BGP {g.graph['layout']}, {established} of {len(up) + len(down)} "
                 "sessions established (dashed)")
    ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["lab_graph", "to_mermaid", "to_dot", "positions", "save_png"]
