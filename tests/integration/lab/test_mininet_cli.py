"""`lab cli`: Mininet's own CLI on a running lab (netns pods and a Docker pod), scripted: node names with
'/', `pingall` that sees the policies, `net` and `dump`; leaving it changes nothing in the lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import pipeline
from topology import names
from topology.docker_engine import stop_daemon_if_idle

pytestmark = pytest.mark.root
REPO = Path(__file__).parents[3]
ISOLATE_DB = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-alone, namespace: dev}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
"""


def links_of(netns: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "-n", netns, "link"], capture_output=True, text=True, check=True).stdout
    return sorted(link["ifname"] for link in json.loads(out))


def test_mininet_cli_on_a_running_lab(make_lab, lab_dirs: Path) -> None:  # type: ignore[no-untyped-def]
    (lab_dirs / "isolate.yaml").write_text(ISOLATE_DB)
    make_lab({"name": "itmn", "hosts": 2, "namespaces": [{"name": "dev"}], "apply": ["isolate.yaml"],
              "pods": [{"name": "web", "namespace": "dev", "host": "node1", "labels": {"app": "web"}},
                       {"name": "db", "namespace": "dev", "host": "node2", "labels": {"app": "db"}},
                       {"name": "box", "namespace": "dev", "host": "node2", "runtime": "docker"}]})
    before = {ns: links_of(ns) for ns in (names.host_netns("itmn", "node1"), names.pod_netns("itmn", "dev", "web"))}
    script = lab_dirs / "cli.txt"
    script.write_text("dev/web ping -c1 -W2 dev/box\nnet\ndump\npingall\n")
    try:
        done = subprocess.run([sys.executable, "-m", "lab", "cli", "--lab", "itmn", "--script", str(script)],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        assert done.returncode == 0, done.stderr
        out = done.stdout + done.stderr  # Mininet prints through its logger (stderr)
        assert "1 packets transmitted, 1 received" in out  # dev/box's name became its address
        assert "dev/web eth0:cali" in out and "fabric" in out  # net: every veth as a link
        assert "<LabNode dev/db: eth0:" in out  # dump
        # pingall: everyone reaches everyone except dev/db, which takes no ingress (3 pods, 2 hosts).
        assert "dev/db -> node1 node2 dev/box dev/web" in out, out  # db may send
        assert "dev/web -> node1 node2 dev/box X" in out and "node1 -> node2 dev/box X dev/web" in out, out
        assert "*** Results: 20% dropped (16/20 received)" in out, out
        assert {ns: links_of(ns) for ns in before} == before  # nothing created or deleted
        leftover = subprocess.run(["pgrep", "-f", "mininet:dev/web"], capture_output=True, text=True).stdout
        assert leftover == ""
    finally:
        pipeline.down("itmn", force=True)
        stop_daemon_if_idle()


def test_mn_custom_file_brings_the_demo_up_opens_the_cli_and_takes_it_down(lab_dirs: Path) -> None:
    # The demo built by the Mininet engine: a Mininet user's `mn` gives a lab of Mininet nodes.
    env = {**os.environ, "NETPOL_LAB": "itmnd", "NETPOL_LAB_ENGINE": "mininet"}
    bridge = names.fabric_bridge_ifname()
    try:
        done = subprocess.run(["mn", "--custom", str(REPO / "lab" / "mininet" / "netpol.py")], env=env,
                              input=f"dev/web ping -c1 -W2 prod/db\npingall\nfabric ip -d link show {bridge}\n",
                              capture_output=True, text=True, timeout=300, cwd=lab_dirs)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out
        assert "1 packets transmitted, 1 received" in out and "*** Results: 0% dropped (90/90 received)" in out, out
        assert "forward_delay 1500" in out, out  # brctl's bridge (Mininet's LinuxBridge), not the netns engine's 0
        assert "lab itmnd is down" in out and not pipeline.is_up("itmnd")
        assert "Starting controller" not in out and "Adding switches" not in out  # mn built nothing itself
    finally:
        pipeline.down("itmnd", force=True)
