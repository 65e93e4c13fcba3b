"""Benchmark: `lab up` time and memory of the demo and the bank world on each engine, side by side in one run.

    sudo .venv/bin/python bench/engines.py [--worlds demo,bank] [--bank-pods 40]
                                           [--engines netns,docker-pods,mininet]

Worlds: the demo (3 hosts, 6 pods, the outside server) and the bank (16 hosts; its first --bank-pods
services of `lab bank`, as pods of the lab file). Engines: the netns engine with bare namespace pods
(netns), the same with every pod a container of the default busybox image in the lab's dockerd
(docker-pods), and the Mininet engine (mininet: every node and pod a Mininet node). Prints per world and
engine the total, the fabric and pod stages, the lab's process RSS (responder, ExaBGP, controller; with
Docker: dockerd, containerd, shims and the containers' processes too), the drop of MemAvailable and the
time `lab down` takes. Private state directories under /tmp; every lab is torn down, the lab's dockerd
stopped when it started it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def rss_kib(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += next(int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ln.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def docker_pids() -> set[int]:
    """dockerd, its containerd and the shims: every process naming the lab's daemon folders."""
    from topology import processes
    from topology.docker_daemon import DaemonPaths

    marker = str(DaemonPaths.for_prefix().run_dir)
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and marker in processes.cmdline(int(p))}


def world(name: str, bank_pods: int) -> dict[str, Any]:
    if name == "demo":
        return yaml.safe_load((REPO / "lab" / "labs" / "demo.yaml").read_text())
    from policy_dataplane.policy.bankgen import BankSpec, bank_documents

    data = yaml.safe_load((REPO / "lab" / "labs" / "bank.yaml").read_text())
    docs = [d for d in bank_documents(BankSpec(services=bank_pods, fixed_ips=False)) if d.get("kind") == "Pod"]
    data["namespaces"] = [{"name": n} for n in sorted({d["metadata"]["namespace"] for d in docs})]
    data["pods"] = [{"name": d["metadata"]["name"], "namespace": d["metadata"]["namespace"],
                     "labels": d["metadata"].get("labels", {})} for d in docs]
    data.pop("apply", None)
    return data


ENGINE_FIELDS = {"netns": {}, "docker-pods": {"runtime": "docker"}, "mininet": {"engine": "mininet"}}


def measure(data: dict[str, Any], engine: str, tmp: Path) -> dict[str, Any]:
    from lab import pipeline
    from lab.labfile import parse_lab
    from topology import names, processes
    from topology.engine import NetnsEngine

    data = {**data, "name": "benchen", **ENGINE_FIELDS[engine]}
    spec = parse_lab(data, f"<bench {engine}>", tmp)
    before = mem_available_kib()
    started = time.perf_counter()
    try:
        stages = pipeline.up(spec, timeout=300)
        total = time.perf_counter() - started
        paths = names.LabPaths.for_lab("benchen")
        pids = set(processes.pids_from_files(paths.run_dir, marker=f"{names.PREFIX}-benchen"))
        for netns in NetnsEngine().list_owned("benchen"):
            pids.update(processes.pids_in_netns(netns))
        pids |= docker_pids()
        result = {"total": total, "stages": stages, "pods": len(spec.pod_instances()), "processes": len(pids),
                  "rss_mib": rss_kib(pids) / 1024, "mem_mib": (before - mem_available_kib()) / 1024}
    finally:
        down_started = time.perf_counter()
        pipeline.down("benchen", force=True)
        from topology.docker_engine import stop_daemon_if_idle

        stop_daemon_if_idle()
        down = time.perf_counter() - down_started
    return {**result, "down": down}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", default="demo,bank")
    parser.add_argument("--bank-pods", type=int, default=40)
    parser.add_argument("--engines", default=",".join(ENGINE_FIELDS))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="netpol-lab-bench-"))
    os.environ["NETPOL_LAB_STATE"], os.environ["NETPOL_LAB_RUN"] = str(tmp / "state"), str(tmp / "run")
    results = {}
    for name in args.worlds.split(","):
        data = world(name, args.bank_pods)
        for engine in args.engines.split(","):
            print(f"{name} on {engine} ...", flush=True)
            results[name, engine] = measure(data, engine, tmp)
    print("\nlab up (until every host has every route), then lab down")
    print(f"{'world':<6} {'engine':<12} {'pods':>5} {'up s':>6} {'fabric s':>9} {'pods s':>7} {'ready s':>8} "
          f"{'procs':>6} {'RSS MiB':>8} {'mem MiB':>8} {'down s':>7}")
    for (name, engine), r in results.items():
        stages = r["stages"]
        print(f"{name:<6} {engine:<12} {r['pods']:>5} {r['total']:>6.1f} {stages['fabric']:>9.2f} "
              f"{stages['pods']:>7.2f} {stages.get('containers ready', 0.0):>8.1f} {r['processes']:>6} "
              f"{r['rss_mib']:>8.0f} {r['mem_mib']:>8.0f} {r['down']:>7.1f}")


if __name__ == "__main__":
    main()
