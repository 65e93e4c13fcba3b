"""One lab on two simulated machines on one box, sharing one etcd (a child process of the test).

Each machine is `lab up --machine NAME` run with its own state and run directories (as on its own box):
its fabric bridge is in its own namespace, and the two fabrics meet only through kernel VXLAN over a veth
underlay between the two machine namespaces. The demo world split across them must give exactly the
one-machine lab's matrix; BGP runs across the tunnel; one machine's controller dying leaves the other
machine's enforcement as it was, and it resyncs its own hosts when it comes back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import pipeline
from lab.labfile import parse_lab
from tests.integration.lab.reach import tcp_outcomes
from topology import names, netns

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "lab" / "labs" / "demo.yaml"
POLICY = REPO / "lab" / "scenarios" / "dev-prod-isolation.yaml"
MACHINES = {"ma": ["node1"], "mb": ["node2", "node3"]}  # dev/web and prod/db on ma; the rest on mb
PORTS = (80, 5432)


def _lab_data(name: str, store: dict[str, Any] | None) -> dict[str, Any]:
    data = yaml.safe_load(DEMO.read_text())
    data["name"] = name
    data["apply"] = ["dev-prod-isolation.yaml"]
    if store is not None:
        data["store"] = store
        data["machines"] = [{"name": "ma", "underlay": "10.250.0.1/24"}, {"name": "mb", "underlay": "10.250.0.2/24"}]
        data["hosts"] = [{"name": h, "machine": m} for m, hosts in MACHINES.items() for h in hosts]
    return data


def _write_lab(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(POLICY, folder / POLICY.name)
    path = folder / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _matrices(lab: str, env: dict[str, str], out: Path) -> dict[int, dict[tuple[str, str], str]]:
    """`lab matrix --full` per port: measured verdict per (source, destination); every cell must agree with
    the oracle."""
    found = {}
    for port in PORTS:
        done = _lab(env, "matrix", "--lab", lab, "-p", "tcp", "--port", str(port), "--full", "--json",
                    "--out", str(out / f"m{port}"))
        report = json.loads((out / f"m{port}.json").read_text())
        assert report["mismatches"] == 0, done.stdout[-3000:]
        found[port] = {(r["src"], r["dst"]): r["measured"] for r in report["records"]}
    return found


def _lab(env: dict[str, str], *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "lab", *argv], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    if check:
        assert done.returncode == 0, f"lab {' '.join(argv)}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture
def machine_env(tmp_path: Path) -> Iterator[Callable[[str], dict[str, str]]]:
    """Environment of each simulated machine: its own state and run directories."""
    made: list[dict[str, str]] = []

    def env_of(machine: str) -> dict[str, str]:
        env = {**os.environ, names.STATE_ROOT_ENV: str(tmp_path / machine / "state"),
               names.RUN_ROOT_ENV: str(tmp_path / machine / "run")}
        made.append(env)
        return env

    try:
        yield env_of
    finally:
        for env in made:
            _lab(env, "down", "two", "--force", check=False)
        left = netns.list_netns(names.lab_netns_prefix("two"))
        assert not left, f"left behind: {left}"


def _one_machine_matrices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[int, dict[tuple[str, str], str]]:
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "one" / "state"))
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "one" / "run"))
    spec = parse_lab(_lab_data("one", None), "<one machine>", _write_lab(tmp_path / "one", _lab_data("one", None)).parent)
    try:
        pipeline.up(spec, timeout=60, controller=False)
        return _matrices("one", dict(os.environ), tmp_path / "one")
    finally:
        pipeline.down("one", force=True)


def _controller_pid(env: dict[str, str]) -> int:
    return int((Path(env[names.RUN_ROOT_ENV]) / f"{names.PREFIX}-two" / "controller.pid").read_text().split()[0])


def test_demo_split_across_two_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, etcd_endpoint: str,
                                        machine_env: Callable[[str], dict[str, str]]) -> None:
    one = _one_machine_matrices(tmp_path, monkeypatch)
    lab_file = _write_lab(tmp_path / "two", _lab_data("two", {"backend": "etcd", "endpoints": [etcd_endpoint]}))
    env_a, env_b = machine_env("ma"), machine_env("mb")
    _lab(env_a, "up", "-f", str(lab_file), "--machine", "ma", "-q")
    _lab(env_b, "up", "-f", str(lab_file), "--machine", "mb", "-q")

    # The fabrics are apart: node1's port is on ma's bridge only; they meet through VXLAN alone.
    fabric_a, fabric_b = names.fabric_netns("two", "ma"), names.fabric_netns("two", "mb")
    ports_a = {e["ifname"] for e in json.loads(netns.run_in(fabric_a, ["ip", "-j", "link", "show", "master",
                                                                        names.fabric_bridge_ifname()]))}
    ports_b = {e["ifname"] for e in json.loads(netns.run_in(fabric_b, ["ip", "-j", "link", "show", "master",
                                                                        names.fabric_bridge_ifname()]))}
    assert names.vxlan_ifname() in ports_a and names.vxlan_ifname() in ports_b
    assert len(ports_a) == 1 + 2 and len(ports_b) == 1 + 2  # ma: node1, tasks; mb: node2, node3

    # BGP across the tunnel: every session of node1 (on ma) to node2 and node3 (on mb) is Established.
    deadline = time.monotonic() + 60
    while True:
        sessions = json.loads(_lab(env_a, "bgp", "--lab", "two", "--json").stdout)
        established = {(s["speaker"], s["peer"]) for s in sessions["sessions"] if s["state"] == "established"}
        if {("node1", "node2"), ("node1", "node3")} <= established or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {("node1", "node2"), ("node1", "node3")} <= established, sessions

    two = _matrices("two", env_a, tmp_path / "two")
    assert two == one  # exactly the one-machine lab's verdicts, cell by cell

    # `lab status` on either machine shows every host with its machine.
    status = json.loads(_lab(env_b, "status", "--lab", "two", "--json", check=False).stdout)
    assert {n["name"]: n.get("machine") for n in status["nodes"] if n["kind"] == "host"} == {
        "node1": "ma", "node2": "mb", "node3": "mb"}
    assert set(status["controller"]["hosts"]) == {"node2", "node3"}  # mb's own controller: its hosts
    assert set(status["machines"]["ma"]["hosts"]) == {"node1"}  # ma's, as its controller published them
    assert status["machines"]["ma"]["hosts"]["node1"]["in_sync"]

    # mb's controller dies; ma's enforcement is untouched (dev/web on node1 still refuses prod/web) ...
    pid_b = _controller_pid(env_b)
    os.kill(pid_b, signal.SIGKILL)
    assert _matrices("two", env_a, tmp_path / "after-kill") == one
    # ... and mb's own filters, wiped while its controller is down, come back when it is started again.
    node2 = names.host_netns("two", "node2")
    netns.run_in(node2, ["nft", "flush", "ruleset"])
    _lab(env_b, "status", "--lab", "two", check=False)  # any lab command starts a dead controller again
    assert _controller_pid(env_b) != pid_b
    deadline = time.monotonic() + 30
    while not netns.run_in(node2, ["nft", "list", "tables"]).strip() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _matrices("two", env_a, tmp_path / "resynced") == one


def test_a_change_made_on_one_machine_is_programmed_by_the_other(
        tmp_path: Path, etcd_endpoint: str, machine_env: Callable[[str], dict[str, str]]) -> None:
    lab_file = _write_lab(tmp_path / "two", _lab_data("two", {"backend": "etcd", "endpoints": [etcd_endpoint]}))
    env_a, env_b = machine_env("ma"), machine_env("mb")
    _lab(env_a, "up", "-f", str(lab_file), "--machine", "ma", "-q")
    _lab(env_b, "up", "-f", str(lab_file), "--machine", "mb", "-q")
    status = json.loads(_lab(env_a, "status", "--lab", "two", "--json", check=False).stdout)
    ip = {f"{p['namespace']}/{p['name']}": p["ip"] for p in status["pods"]}
    web = names.pod_netns("two", "dev", "web")  # on ma
    deadline = time.monotonic() + 60
    while tcp_outcomes(web, [(ip["dev/db"], 5432)])[(ip["dev/db"], 5432)] != "accepted":
        assert time.monotonic() < deadline, "dev/web never reached dev/db across the machines"
        time.sleep(0.5)
    # A pod added from ma on mb's node3: mb's controller, woken by the store's watch, makes it.
    late = tmp_path / "two" / "late.yaml"
    late.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: late, namespace: dev, labels: {app: late}}\n"
                    "spec:\n  nodeName: node3\n  containers: [{name: main, ports: [{containerPort: 80}]}]\n")
    _lab(env_a, "apply", "--lab", "two", "-f", str(late))
    status = json.loads(_lab(env_b, "status", "--lab", "two", "--json", check=False).stdout)
    late_ip = next(p["ip"] for p in status["pods"] if p["name"] == "late")
    deadline = time.monotonic() + 30
    while tcp_outcomes(web, [(late_ip, 80)], timeout=1.0)[(late_ip, 80)] != "accepted":
        assert time.monotonic() < deadline, "the pod added from ma never answered on mb"
        time.sleep(0.2)
    assert netns.exists(names.pod_netns("two", "dev", "late"))
    # Labelled from ma; dev/db runs on mb, whose controller follows the store and programs the quarantine.
    quarantine = tmp_path / "two" / "quarantine.yaml"
    shutil.copy(REPO / "lab" / "scenarios" / "quarantine.yaml", quarantine)
    _lab(env_a, "apply", "--lab", "two", "-f", str(quarantine))
    _lab(env_a, "label", "--lab", "two", "pod", "dev/db", "quarantine=true")
    deadline = time.monotonic() + 30
    while tcp_outcomes(web, [(ip["dev/db"], 5432)], timeout=1.0)[(ip["dev/db"], 5432)] != "no answer":
        assert time.monotonic() < deadline, "mb's controller did not program the quarantine of dev/db"
        time.sleep(0.2)
