"""Benchmark: bring up a big lab (16 hosts, 1500 pods by default) and print how long and how much memory.

    sudo .venv/bin/python bench/fabric_scale.py [--hosts 16] [--pods 1500] [--layout mesh|route-reflector]

Prints time to `lab up` per stage, time until every host has every route, process PSS and kernel memory.
(`lab bench` measures the same on the bank, per dataplane.)
Runs in private state directories under /tmp and always tears the lab down.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--pods", type=int, default=1500)
    parser.add_argument("--layout", choices=["mesh", "route-reflector"], default="mesh")
    parser.add_argument("--name", default="bench")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="npl-bench-"))
    os.environ["NETPOL_LAB_STATE"] = str(tmp / "state")
    os.environ["NETPOL_LAB_RUN"] = str(tmp / "run")
    from lab import pipeline
    from lab.bench.bringup import kernel_kib, lab_pids, pss_kib
    from lab.labfile import parse_lab

    data = {
        "name": args.name,
        "hosts": args.hosts,
        "bgp": {"layout": args.layout},
        "namespaces": [{"name": "bank"}],
        "pods": [{"name": "svc", "namespace": "bank", "replicas": args.pods,
                  "ports": [{"name": "http", "containerPort": 8080}]}],
    }
    spec = parse_lab(data, "<bench>", tmp)
    before = kernel_kib()
    started = time.perf_counter()
    try:
        timings = pipeline.up(spec, wait=True, timeout=300)
        total = time.perf_counter() - started
        pids = lab_pids(args.name)
        kernel = kernel_kib() - before
        print(f"lab of {args.hosts} hosts, {args.pods} pods, BGP {args.layout}")
        for stage, seconds in timings.items():
            print(f"  {stage:<14} {seconds:8.2f} s")
        print(f"  {'total':<14} {total:8.2f} s   (up and converged: every host has every route)")
        print(f"  processes: {len(pids)}, PSS {pss_kib(pids) / 1024:.0f} MiB")
        print(f"  kernel memory (slab, stacks, page tables, per-CPU; machine-wide growth): {kernel / 1024:.0f} MiB")
    finally:
        t0 = time.perf_counter()
        pipeline.down(args.name, force=True)
        print(f"  down in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
