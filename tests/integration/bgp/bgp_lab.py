"""Real labs for the BGP tests: the topology engine's namespaces, real ExaBGP and BIRD, torn down in finally.

Lab names `bt1`, `bt2`, ... are reserved for these tests; run files go to a temporary directory.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgp import bird, speaker
from bgp.ipam import Ipam, IpamConfig
from bgp.sessions import BgpPlan, plan_sessions
from topology import names
from topology.engine import NetnsEngine
from topology.model import NodePlan, TopologyPlan, plan_fabric, plan_node

FABRIC = IPv4Network("10.99.0.0/24")
POOL = IPv4Network("10.10.0.0/16")


@dataclass
class BgpLab:
    lab: str
    paths: names.LabPaths
    topology: TopologyPlan
    ipam: Ipam
    plan: BgpPlan | None = None
    started: list[str] = field(default_factory=list)

    def node(self, name: str) -> NodePlan:
        return self.topology.node(name)

    def ip(self, name: str) -> IPv4Address:
        return self.node(name).fabric_ip.ip

    def hosts(self) -> list[str]:
        return [n.name for n in self.topology.nodes if n.kind == "host"]

    def speakers(self) -> list[str]:
        return [n.name for n in self.topology.nodes if n.kind in ("host", "external")]

    def start(self, layout: str = "mesh", hold_time: int = 3) -> BgpPlan:
        self.plan = plan_sessions(self.topology.nodes, layout=layout, hold_time=hold_time)
        for rr in self.plan.reflectors:
            bird.start_reflector(self.paths, rr)
        self.publish(notify=False)
        self.started += [s.name for s in self.plan.speakers]
        speaker.start_speakers(self.paths, self.plan.speakers)
        return self.plan

    def publish(self, notify: bool = True) -> None:
        """Hand every host its IPAM announcements (as the lab does after a pod change)."""
        for host in self.hosts():
            speaker.set_announcements(self.paths, host, self.ipam.announcements(host), notify=notify)

    def routes(self, name: str) -> dict[IPv4Network, str]:
        """Routes the agent made in a node's kernel: prefix -> next hop, or 'blackhole'."""
        out = subprocess.run(
            ["ip", "-j", "-n", self.node(name).netns, "route", "show", "proto", "bgp"],
            capture_output=True, text=True, check=True,
        )
        routes = {}
        for route in json.loads(out.stdout or "[]"):
            routes[IPv4Network(route["dst"])] = route.get("gateway") or route.get("type", "?")
        return routes

    def expected_routes(self, name: str) -> dict[IPv4Network, str]:
        """What a node's kernel must hold: blackholes for own blocks, each other host's prefixes via it."""
        want: dict[IPv4Network, str] = {}
        for host in self.hosts():
            for prefix in self.ipam.announcements(host):
                if host == name:
                    if prefix.prefixlen < 32:
                        want[prefix] = "blackhole"
                else:
                    want[prefix] = str(self.ip(host))
        return want


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> float:
    """Poll until check() holds; return the seconds it took (fail with `what` otherwise)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def converged(lab: BgpLab) -> bool:
    return all(lab.routes(n) == lab.expected_routes(n) for n in lab.speakers())


def wait_converged(lab: BgpLab, timeout: float = 25.0) -> float:
    try:
        return wait_for("every node to hold exactly its expected routes", lambda: converged(lab), timeout)
    except pytest.fail.Exception:
        detail = {n: {"have": lab.routes(n), "want": lab.expected_routes(n)} for n in lab.speakers()}
        pytest.fail(f"not converged: {detail}")
        raise


def _kill_leftovers(lab: str) -> None:
    """Last resort: processes still inside this test lab's namespaces (all started by this test)."""
    for netns in NetnsEngine().list_owned(lab):
        out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
        for pid in out.stdout.split():
            subprocess.run(["kill", "-9", pid], capture_output=True)


@pytest.fixture
def make_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BgpLab]]:
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    engine = NetnsEngine()
    labs: list[BgpLab] = []

    def make(
        lab: str, hosts: int = 3, externals: int = 0, reflectors: int = 0, block_prefix: int = 26, cap: int = 20
    ) -> BgpLab:
        assert lab.startswith("bt"), "BGP tests use labs bt1, bt2, ... only"
        nodes = [plan_node(lab, f"h{i + 1}", "host", f"10.99.0.{i + 1}/24") for i in range(hosts)]
        nodes += [plan_node(lab, f"x{i + 1}", "external", f"10.99.0.{100 + i}/24") for i in range(externals)]
        nodes += [plan_node(lab, f"rr{i + 1}", "reflector", f"10.99.0.{200 + i}/24") for i in range(reflectors)]
        topology = TopologyPlan(lab=lab, fabric=plan_fabric(lab, FABRIC), nodes=tuple(nodes))
        made = BgpLab(lab, names.LabPaths.for_lab(lab), topology,
                      Ipam(IpamConfig(POOL, block_prefix=block_prefix, max_blocks_per_host=cap)))
        labs.append(made)
        engine.build(topology)
        return made

    try:
        yield make
    finally:
        for made in labs:
            try:
                for name in made.started:
                    speaker.stop_speaker(made.paths, name)
                if made.plan:
                    for rr in made.plan.reflectors:
                        bird.stop_reflector(made.paths, rr.name)
            finally:
                _kill_leftovers(made.lab)
                engine.destroy(made.lab)
