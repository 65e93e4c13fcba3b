"""Packets follow the routes BGP installed: pods on different hosts and an external node reach each other
(a TCP connection refused by the target counts as reached; a timeout does not)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bgp_lab import BgpLab, wait_converged

from topology.engine import NetnsEngine
from topology.model import plan_pod

pytestmark = pytest.mark.root

PROBE = """
import json, socket, sys
out = {}
for ip in sys.argv[1:]:
    s = socket.socket()
    s.settimeout(1.0)
    try:
        s.connect((ip, 9))
        out[ip] = "open"
    except ConnectionRefusedError:
        out[ip] = "refused"
    except OSError as err:
        out[ip] = type(err).__name__
    finally:
        s.close()
print(json.dumps(out))
"""


def reach(netns: str, targets: list[str]) -> dict[str, str]:
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", PROBE, *targets],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_pods_and_external_reach_each_other_over_bgp_routes(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab: BgpLab = make_lab("bt8", hosts=3, externals=1, block_prefix=30, cap=1)
    pods = []
    for host, count in {"h2": 1, "h3": 2, "h1": 5}.items():  # h1's fifth pod borrows from h2's block
        for i in range(count):
            ip = lab.ipam.allocate(f"default/{host}-{i}", host)
            pods.append(plan_pod(lab.lab, "default", f"{host}-{i}", host, ip))
    assert [a.ip for a in lab.ipam.borrowed_by("h1")] == [pods[7].ip], "the scenario needs a borrowed address"
    NetnsEngine().add_pods(pods)
    lab.start()
    wait_converged(lab)
    targets = [str(p.ip) for p in pods]
    for source in [pods[0], pods[1], pods[3], pods[7]]:  # h2, h3, h1 and the borrower
        results = reach(source.netns, [t for t in targets if t != str(source.ip)])
        assert set(results.values()) == {"refused"}, f"from {source.key}: {results}"
    results = reach(lab.node("x1").netns, targets)
    assert set(results.values()) == {"refused"}, f"from the external node: {results}"
