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
from collections import Counter, defaultdict
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from topology import names, netns  # noqa: E402
from topology.engines import engine_names, get_engine  # noqa: E402
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


def neighbour_pairs(pods: tuple[PodPlan, ...]) -> list[tuple[PodPlan, PodPlan]]:
    """Each pod with the next pod of its host: every pod sends once, every host routes a connection per pod."""
    by_host: dict[str, list[PodPlan]] = defaultdict(list)
    for pod in pods:
        by_host[pod.host].append(pod)
    return [(a, b) for group in by_host.values() for a, b in zip(group, group[1:] + group[:1])]


def row(label: str, value: str) -> None:
    print(f"  {label + ':':42s} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--pods", type=int, default=1500)
    parser.add_argument("--lab", default="tt9")
    parser.add_argument("--engine", default="netns", choices=engine_names(), help="topology engine (registry name)")
    args = parser.parse_args()
    os.environ.setdefault(names.RUN_ROOT_ENV, tempfile.mkdtemp(prefix="npl-bench-"))
    paths = names.LabPaths.for_lab(args.lab)
    engine = get_engine(args.engine)
    engine.destroy(args.lab)
    plan = scale_plan(args.lab, args.hosts, args.pods)
    load = os.getloadavg()[0]
    print(f"topology scale: {args.hosts} hosts, {args.pods} pods (lab {args.lab}, {os.cpu_count()} cores, load {load:.1f})")
    mem0 = used_mib()
    try:
        t0 = time.perf_counter()
        engine.build(plan)
        t_build = time.perf_counter() - t0
        mem_built = used_mib()
        per_pod_ms = t_build / max(args.pods, 1) * 1000
        row("build (namespaces, veths, plumbing)", f"{t_build:6.2f} s  ({per_pod_ms:.2f} ms/pod)")
        t0 = time.perf_counter()
        pid = start_responder(paths, plan.pods)
        t_resp = time.perf_counter() - t0
        row(f"responder up ({args.pods} sockets)", f"{t_resp:6.2f} s  (RSS {rss_mib(pid):.0f} MiB)")
        same_host = [p for p in plan.pods if p.host == "h1"][:2]
        row("pod to pod on h1, port 80", tcp(same_host[0].netns, same_host[1], 80))
        row("pod to pod on h1, port 81", tcp(same_host[0].netns, same_host[1], 81))
        t0 = time.perf_counter()
        outcomes = Counter(tcp(a.netns, b, 80) for a, b in neighbour_pairs(plan.pods))
        t_conn = time.perf_counter() - t0
        row("every pod to a pod on its host", f"{dict(outcomes)} in {t_conn:.2f} s")
        per_pod = (mem_built - mem0) / max(args.pods, 1) * 1024
        row("memory used by the lab (MemAvailable)", f"{mem_built - mem0:6.0f} MiB  ({per_pod:.0f} KiB/pod)")
        stop_responder(paths)
    finally:
        t0 = time.perf_counter()
        removed = engine.destroy(args.lab)
        t_destroy = time.perf_counter() - t0
    row(f"destroy ({len(removed)} namespaces)", f"{t_destroy:6.2f} s")
    time.sleep(2)  # namespaces are freed by a kernel worker after `netns del`; memory is read after it
    row("memory still used 2 s after destroy", f"{used_mib() - mem0:6.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
