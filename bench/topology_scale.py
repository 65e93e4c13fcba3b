"""Scale benchmark of the topology engine: build and destroy N hosts and M pods, print figures.

    sudo .venv/bin/python bench/topology_scale.py [--hosts 16] [--pods 1500] [--lab tt9]

Prints the build time (namespaces, veths, Calico plumbing), the responder start time (one TCP socket per
pod), a real TCP check between pods, the destroy time and memory (kernel, from /proc/meminfo, and the
responder's RSS). Figures, not assertions: speed goals are read from here, never from tests.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from topology import names, netns  # noqa: E402
from topology.engine import NetnsEngine  # noqa: E402
from topology.model import PodPlan, TopologyPlan, plan_fabric, plan_node, plan_pod  # noqa: E402
from topology.responder import start_responder, stop_responder  # noqa: E402

POD_POOL = IPv4Address("10.240.0.0")


def meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def used_mib() -> float:
    return (meminfo_kib("MemTotal") - meminfo_kib("MemAvailable")) / 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scale_plan(lab: str, hosts: int, pods: int) -> TopologyPlan:
    nodes = tuple(plan_node(lab, f"h{i + 1}", "host", f"10.250.0.{i + 1}/24") for i in range(hosts))
    pod_plans = tuple(
        plan_pod(lab, f"ns{i % 10}", f"pod{i}", f"h{i % hosts + 1}", POD_POOL + i + 1, [(80, "TCP")])
        for i in range(pods)
    )
    return TopologyPlan(lab, plan_fabric(lab, "10.250.0.0/24"), nodes, pod_plans)


def tcp(name: str, pod: PodPlan, port: int) -> str:
    with netns.entered(name):
        sock = socket.socket()
    sock.settimeout(2)
    try:
        sock.connect((str(pod.ip), port))
        return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"failed ({exc})"
    finally:
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--pods", type=int, default=1500)
    parser.add_argument("--lab", default="tt9")
    args = parser.parse_args()
    os.environ.setdefault(names.RUN_ROOT_ENV, tempfile.mkdtemp(prefix="npl-bench-"))
    paths = names.LabPaths.for_lab(args.lab)
    engine = NetnsEngine()
    engine.destroy(args.lab)
    plan = scale_plan(args.lab, args.hosts, args.pods)
    print(f"topology scale: {args.hosts} hosts, {args.pods} pods (lab {args.lab}, {os.cpu_count()} cores)")
    mem0 = used_mib()
    try:
        t0 = time.perf_counter()
        engine.build(plan)
        t_build = time.perf_counter() - t0
        mem_built = used_mib()
        print(f"  build (namespaces, veths, plumbing):  {t_build:6.2f} s  ({t_build / max(args.pods, 1) * 1000:.2f} ms/pod)")
        t0 = time.perf_counter()
        pid = start_responder(paths, plan.pods)
        t_resp = time.perf_counter() - t0
        print(f"  responder up ({args.pods} sockets): {t_resp:6.2f} s  (RSS {rss_mib(pid):.0f} MiB)")
        same_host = [p for p in plan.pods if p.host == "h1"][:2]
        print(f"  pod to pod on h1, port 80:            {tcp(same_host[0].netns, same_host[1], 80)}")
        print(f"  pod to pod on h1, port 81:            {tcp(same_host[0].netns, same_host[1], 81)}")
        print(f"  kernel+user memory for the lab:       {mem_built - mem0:6.0f} MiB  "
              f"({(mem_built - mem0) / max(args.pods, 1) * 1024:.0f} KiB/pod)")
        stop_responder(paths)
    finally:
        t0 = time.perf_counter()
        removed = engine.destroy(args.lab)
        t_destroy = time.perf_counter() - t0
    print(f"  destroy ({len(removed)} namespaces): {t_destroy:6.2f} s")
    time.sleep(2)  # namespaces are freed by a kernel worker after `netns del`; memory is read after it
    print(f"  memory still used 2 s after destroy:  {used_mib() - mem0:6.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
