"""`engine: mininet` for real: the lab's namespaces are Mininet nodes (the fabric Mininet's LinuxBridge),
plumbed like the netns engine so pods, BGP and policies work; Mininet's CLI drives it with the names users
know; nothing lands in the root namespace, Mininet's machine-wide init never runs, and `lab down` leaves
no namespace and no Mininet shell behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import pipeline
from topology import names, processes

pytestmark = pytest.mark.root
REPO = Path(__file__).parents[3]
# Root sysctls Mininet's own init (fixLimits) would raise on this machine.
MACHINE_SYSCTLS = ["fs/file-max", "net/core/rmem_max", "net/core/wmem_max", "net/ipv4/neigh/default/gc_thresh3",
                   "kernel/pty/max", "net/core/netdev_max_backlog"]
ISOLATE_DB = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-alone, namespace: dev}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
"""


def root_links() -> set[str]:
    """Links of the root namespace a Mininet-made lab could have left there (a switch, `<node>-eth0`,
    a Calico veth, anything with the lab's prefix); other work on this machine may add its own."""
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    return {name for link in json.loads(out) if names.PREFIX in (name := link["ifname"]) or "-eth" in name
            or name.startswith("cali")}


def sysctls() -> dict[str, str]:
    return {name: Path("/proc/sys", name).read_text() for name in MACHINE_SYSCTLS}


def mininet_shells(lab: str) -> list[int]:
    """Mininet node shells (`bash ... mininet:<name>`) of this lab's namespaces."""
    marker = f"mininet:{names.lab_netns_prefix(lab)}"
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if marker in processes.cmdline(pid)]


def test_a_mininet_lab_is_built_of_mininet_nodes_and_leaves_the_machine_alone(make_lab, lab_dirs: Path) -> None:  # type: ignore[no-untyped-def]
    links, machine = root_links(), sysctls()
    (lab_dirs / "isolate.yaml").write_text(ISOLATE_DB)
    make_lab({"name": "itme", "engine": "mininet", "hosts": 2, "namespaces": [{"name": "dev"}],
              "apply": ["isolate.yaml"], "externals": [{"name": "tasks"}],
              "pods": [{"name": "web", "namespace": "dev", "host": "node1", "labels": {"app": "web"}},
                       {"name": "db", "namespace": "dev", "host": "node2", "labels": {"app": "db"}}]})
    fabric = names.fabric_netns("itme")
    bridge = json.loads(subprocess.run(["ip", "-j", "-d", "-n", fabric, "link", "show", names.fabric_bridge_ifname()],
                                       capture_output=True, text=True, check=True).stdout)[0]
    # Made by Mininet's LinuxBridge (brctl addbr: forward delay 15 s, STP off), not by the netns engine's
    # `ip link add ... forward_delay 0`; with STP off its ports forward at once all the same.
    assert bridge["linkinfo"]["info_data"]["forward_delay"] == 1500 and bridge["linkinfo"]["info_data"]["stp_state"] == 0
    assert mininet_shells("itme") == []  # each shell ended once its namespace was named
    status = subprocess.run([sys.executable, "-m", "lab", "status", "--lab", "itme", "--json"], capture_output=True,
                            text=True, cwd=REPO)
    assert json.loads(status.stdout)["engine"] == "mininet", status.stderr

    script = lab_dirs / "cli.txt"
    script.write_text("dev/db ping -c1 -W2 dev/web\ntasks ping -c1 -W2 dev/web\nnet\npingall\n")
    done = subprocess.run([sys.executable, "-m", "lab", "cli", "--lab", "itme", "--script", str(script)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    out = done.stdout + done.stderr  # Mininet prints through its logger (stderr)
    assert done.returncode == 0, out
    assert out.count("1 packets transmitted, 1 received") == 2, out  # across BGP routes, and from outside
    assert "dev/web eth0:cali" in out and "tasks eth0:" in out, out
    # pingall: dev/db takes no ingress; everything else reaches everything (2 hosts, tasks, 2 pods).
    assert "dev/web -> node1 node2 tasks X" in out and "dev/db -> node1 node2 tasks dev/web" in out, out
    assert "*** Results: 20% dropped (16/20 received)" in out, out
    assert root_links() == links and sysctls() == machine  # the root namespace is as it was

    pipeline.down("itme")
    assert not [n for n in os.listdir("/run/netns") if n.startswith(names.lab_netns_prefix("itme"))]
    assert mininet_shells("itme") == [] and root_links() == links
