"""Benchmark: one lab on one machine against two simulated machines, and SQLite against etcd.

    sudo NETPOL_LAB_PREFIX=nlb .venv/bin/python bench/machines.py [--hosts 4] [--services 100] [--repeat 10]

Three set-ups of the same lab (hosts, then the bank world with `--services` applied):
  one machine, SQLite | one machine, etcd | two simulated machines (half the hosts each), etcd.
Each is measured for: `lab up` (per machine for two: `lab up --machine`, run as a command, Python's start-up
included), the bank applied and programmed on every host, and policy latency: a label change, from the
write until every host of every machine reports it programmed (each machine's controller is asked), p50
and p99. The etcd is a child process on loopback ports (`lab/etcd_child.py`). Prints figures; runs in
private state directories and always tears the labs down.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def lab_data(name: str, hosts: int, store: dict[str, Any] | None, machines: int) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "hosts": hosts, "ipam": {"pool": "10.48.0.0/16"}}
    if store is not None:
        data["store"] = store
    if machines > 1:
        data["machines"] = [{"name": f"m{i}", "underlay": f"10.250.0.{i}/24"} for i in range(1, machines + 1)]
        data["hosts"] = [{"name": f"node{h}", "machine": f"m{1 + (h - 1) * machines // hosts}"}
                         for h in range(1, hosts + 1)]
    return data


def run_setup(label: str, data: dict[str, Any], machines: int, args: argparse.Namespace, tmp: Path) -> list[str]:
    from lab.apply import apply_sources
    from lab.apply import label as set_label
    from lab.controller import launcher
    from lab.runtime import LabRuntime
    from policy_dataplane.policy.bankgen import BankSpec, bank_yaml
    from topology.names import LabPaths

    folder = tmp / data["name"]
    folder.mkdir(parents=True)
    lab_file = folder / "lab.yaml"
    lab_file.write_text(yaml.safe_dump(data))
    names = [f"m{i}" for i in range(1, machines + 1)] if machines > 1 else ["one"]
    envs = {m: {**os.environ, "NETPOL_LAB_STATE": str(folder / m / "state"), "NETPOL_LAB_RUN": str(folder / m / "run")}
            for m in names}
    paths = {m: LabPaths(data["name"], Path(envs[m]["NETPOL_LAB_STATE"]), Path(envs[m]["NETPOL_LAB_RUN"]))
             for m in names}
    figures = []
    try:
        started = time.perf_counter()
        for m in names:
            argv = [sys.executable, "-m", "lab", "up", "-f", str(lab_file), "-q", "--resync", "1"]
            subprocess.run(argv + (["--machine", m] if machines > 1 else []), env=envs[m], check=True, cwd=REPO,
                           capture_output=True)
        figures.append(f"{label}: lab up ({args.hosts} hosts) {time.perf_counter() - started:.1f} s")
        os.environ.update({k: envs[names[0]][k] for k in ("NETPOL_LAB_STATE", "NETPOL_LAB_RUN")})
        runtime = LabRuntime.open(data["name"])

        def programmed_everywhere() -> None:
            revision = runtime.store.revision
            for m in names:
                launcher.wait_programmed(paths[m], revision)

        try:
            started = time.perf_counter()
            apply_sources(runtime, [("bank.yaml", bank_yaml(BankSpec(services=args.services, fixed_ips=False)))])
            programmed_everywhere()
            figures.append(f"{label}: bank applied, programmed on every host ({args.services} services) "
                           f"{time.perf_counter() - started:.1f} s")
            pods = [k for k, _ in runtime.pod_documents()]
            times = []
            for i in range(args.repeat):
                started = time.perf_counter()
                set_label(runtime, pods[i % len(pods)], {"bench": str(i)})
                programmed_everywhere()
                times.append(time.perf_counter() - started)
            figures.append(f"{label}: label change, write -> programmed on every host of every machine: "
                           f"p50 {pct(times, .5) * 1000:.0f} ms, p99 {pct(times, .99) * 1000:.0f} ms")
        finally:
            runtime.close()
    finally:
        for m in reversed(names):
            subprocess.run([sys.executable, "-m", "lab", "down", data["name"], "--force"], env=envs[m], cwd=REPO,
                           capture_output=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    from lab.etcd_child import running_etcd

    tmp = Path(tempfile.mkdtemp(prefix="nl-bench-machines-"))
    figures: list[str] = []
    with running_etcd() as endpoint:
        etcd = {"backend": "etcd", "endpoints": [endpoint]}
        for label, data, machines in (
            ("one machine, sqlite", lab_data("mbone", args.hosts, None, 1), 1),
            ("one machine, etcd", lab_data("mbetcd", args.hosts, etcd, 1), 1),
            ("two machines, etcd", lab_data("mbtwo", args.hosts, etcd, 2), 2),
        ):
            figures += run_setup(label, data, machines, args, tmp)
    print(f"machines benchmark: {args.hosts} hosts, {args.services} services, {args.repeat} label changes")
    for line in figures:
        print("  " + line)


if __name__ == "__main__":
    main()
