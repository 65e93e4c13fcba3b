"""BGP convergence of a 16-host lab, full mesh and route reflector: prints figures, asserts nothing.

For each layout: time from starting the speakers to every host (and the external) holding a route to
every other host's blocks, memory (RSS) of the ExaBGP, agent and BIRD processes, and their idle CPU use
over a few seconds after convergence. Run as root: `.venv/bin/python bench/bgp_convergence.py [--hosts 16]`.
Uses lab names `bb1`/`bb2` and a temporary run directory; removes everything at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Network
from pathlib import Path

from bgp import bird, speaker
from bgp.ipam import Ipam, IpamConfig
from bgp.sessions import BgpPlan, plan_sessions
from topology import names
from topology.engines import engine_names, get_engine
from topology.model import TopologyPlan, plan_fabric, plan_node

PODS_PER_HOST = 94  # 1500 pods over 16 hosts: two /26 blocks each
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def kernel_routes(netns: str) -> set[IPv4Network]:
    out = subprocess.run(["ip", "-j", "-n", netns, "route", "show", "proto", "bgp"],
                         capture_output=True, text=True, check=True)
    return {IPv4Network(r["dst"]) for r in json.loads(out.stdout or "[]") if r.get("type", "unicast") == "unicast"}


def lab_pids(lab: str, engine: str) -> list[int]:
    pids: list[int] = []
    for netns in get_engine(engine).list_owned(lab):
        out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
        pids += [int(p) for p in out.stdout.split()]
    return pids


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes (second field of /proc/PID/statm, in pages)."""
    pages = 0
    for pid in pids:
        try:
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError):
            pass
    return pages * PAGE_SIZE / 2**20


def kind_of(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    text = b" ".join(argv).decode(errors="replace")
    return "agent" if "bgp.agent" in text else "exabgp" if "exabgp" in text else "bird" if "bird" in text else "other"


def rss_by_kind(pids: list[int]) -> str:
    kinds: dict[str, list[int]] = {}
    for pid in pids:
        kinds.setdefault(kind_of(pid), []).append(pid)
    return ", ".join(f"{k} {len(v)} x {rss_mb(v) / len(v):.0f} MB" for k, v in sorted(kinds.items()))


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / CLK_TCK


def run(lab: str, hosts: int, layout: str, engine_name: str) -> dict[str, float]:
    paths = names.LabPaths.for_lab(lab)
    nodes = [plan_node(lab, f"h{i + 1}", "host", f"10.99.0.{i + 1}/24") for i in range(hosts)]
    nodes.append(plan_node(lab, "x1", "external", "10.99.0.100/24"))
    if layout == "route-reflector":
        nodes.append(plan_node(lab, "rr1", "reflector", "10.99.0.200/24"))
    topology = TopologyPlan(lab=lab, fabric=plan_fabric(lab, "10.99.0.0/24"), nodes=tuple(nodes))
    ipam = Ipam(IpamConfig(IPv4Network("10.10.0.0/16")))
    for i in range(hosts):
        for p in range(PODS_PER_HOST):
            ipam.allocate(f"default/h{i + 1}-{p}", f"h{i + 1}")
    plan: BgpPlan = plan_sessions(nodes, layout=layout)
    engine = get_engine(engine_name)
    engine.build(topology)
    try:
        for i in range(hosts):
            speaker.set_announcements(paths, f"h{i + 1}", ipam.announcements(f"h{i + 1}"), notify=False)
        started = time.monotonic()
        for rr in plan.reflectors:
            bird.start_reflector(paths, rr)
        speaker.start_speakers(paths, plan.speakers)
        running = time.monotonic() - started
        want = {
            s.name: {p for h in range(hosts) if f"h{h + 1}" != s.name for p in ipam.announcements(f"h{h + 1}")}
            for s in plan.speakers
        }
        while any(not want[s.name] <= kernel_routes(s.netns) for s in plan.speakers):
            if time.monotonic() - started > 120:
                raise SystemExit(f"{layout}: not converged after 120 s")
            time.sleep(0.05)
        converged = time.monotonic() - started
        pids = lab_pids(lab, engine_name)
        cpu_before, idle_from = cpu_seconds(pids), time.monotonic()
        time.sleep(5)
        idle_cpu = (cpu_seconds(pids) - cpu_before) / (time.monotonic() - idle_from)
        print(f"  {layout}: {rss_by_kind(pids)}")
        return {"processes": len(pids), "speakers_running_s": running, "converged_s": converged,
                "rss_mb": rss_mb(pids), "idle_cpu_cores": idle_cpu, "sessions": plan.session_count()}
    finally:
        for s in plan.speakers:
            speaker.stop_speaker(paths, s.name)
        for rr in plan.reflectors:
            bird.stop_reflector(paths, rr.name)
        engine.destroy(lab)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--engine", default="netns", choices=engine_names(), help="topology engine (registry name)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: it builds namespaces and starts ExaBGP and BIRD", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[names.RUN_ROOT_ENV] = tmp
        print(f"{args.hosts} hosts + 1 external, {PODS_PER_HOST} pods per host ({2} /26 blocks each), "
              f"hold time 9 s, {os.cpu_count()} cores")
        for lab, layout in (("bb1", "mesh"), ("bb2", "route-reflector")):
            r = run(lab, args.hosts, layout, args.engine)
            print(f"{layout:16} {r['sessions']:4.0f} sessions  speakers running {r['speakers_running_s']:5.2f} s  "
                  f"all routes everywhere {r['converged_s']:5.2f} s  RSS {r['rss_mb']:6.0f} MB "
                  f"({r['processes']:.0f} processes)  idle CPU {r['idle_cpu_cores']:.2f} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
