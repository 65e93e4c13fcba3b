"""Benchmark: the lab's controller at work on the bank world.

    sudo .venv/bin/python bench/controller.py [--hosts 16] [--services 1500] [--repeat 10]

Brings the bank up (`lab up`, then the bank applied through the controller), then measures:
- by traffic (`lab policy-latency --change deny|label`, probes streaming at 2000/s): from the write reaching
  the controller (committed, the controller asked to program it) to the first packet with the new verdict on
  every affected path, p50 and p99; and from the library call (the command's own checks before the commit
  included, its start-up not);
- a label change and a new policy, from the command's write to the controller's report that every host
  is programmed (`lab label`/`lab apply` as a library call: no CLI start-up), p50 and p99, and the time the
  controller itself spent on the sync (from its events);
- drift repair: a host's table flushed (`nft flush ruleset` in that host's namespace), until the table is
  back in the kernel, p50 and max (the resync timer decides most of it);
- a killed responder, until it serves again;
- one reconcile pass at this scale, and the controller's memory (RSS);
- the wall time of `lab get pods`, `lab explain` and `lab status` run as commands (Python's start-up
  included; they ask the controller's memory).
Prints figures; runs in private state directories and always tears the lab down.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Pods no bank policy selects, sorted first (`lab policy-latency` probes the first pod from the next ones):
# the bank admits almost nothing, and a deny or a quarantine can only cut paths that flow now.
LATENCY_PODS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: aaa-latency}\n---\n" + "---\n".join(
    f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: aaa-latency, labels: {{app: latency}}}}\n"
    f"spec: {{nodeName: node{i * 4 % 16 + 1}, containers: [{{name: main, ports: [{{containerPort: 80}}]}}]}}\n"
    for i in range(5))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--services", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--resync", type=float, default=1.0)
    parser.add_argument("--name", default="ctlbench")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="npl-bench-"))
    os.environ["NETPOL_LAB_STATE"] = str(tmp / "state")
    os.environ["NETPOL_LAB_RUN"] = str(tmp / "run")
    from lab import pipeline
    from lab.apply import apply_sources, label
    from lab.controller import events, launcher
    from lab.labfile import parse_lab
    from lab.runtime import LabRuntime
    from policy_dataplane.policy.bankgen import BankSpec, bank_yaml
    from topology import names, processes

    spec = parse_lab({"name": args.name, "hosts": args.hosts, "ipam": {"pool": "10.48.0.0/16"}}, "<bench>", tmp)
    figures: list[str] = []
    try:
        started = time.perf_counter()
        pipeline.up(spec, timeout=300, resync=args.resync)
        figures.append(f"lab up with controller ({args.hosts} hosts): {time.perf_counter() - started:.1f} s")
        paths = names.LabPaths.for_lab(args.name)
        runtime = LabRuntime.open(args.name)
        try:
            started = time.perf_counter()
            apply_sources(runtime, [("bank.yaml", bank_yaml(BankSpec(services=args.services, fixed_ips=False))),
                                    ("latency.yaml", LATENCY_PODS)])
            figures.append(f"bank applied and programmed ({args.services} services): "
                           f"{time.perf_counter() - started:.1f} s")
            pods = [k for k, _ in runtime.pod_documents()]

            def write_to_programmed(change) -> tuple[float, float]:  # type: ignore[no-untyped-def]
                since = time.time()
                started = time.perf_counter()
                change()
                total = time.perf_counter() - started
                syncs = [e.seconds for e in events.read(paths) if e.time >= since and e.what == "SyncPolicy"]
                return total, sum(syncs)

            for change in ("deny", "label"):
                done = subprocess.run([sys.executable, "-m", "lab", "policy-latency", "--lab", args.name, "--json",
                                       "-r", str(args.repeat), "--change", change], capture_output=True, text=True)
                if done.returncode != 0:
                    figures.append(f"policy-latency --change {change} failed: {done.stderr.strip()[-300:]}")
                    continue
                summary = json.loads(done.stdout)["summary"]
                every, handed = summary["all_paths_us"], summary["from_controller_us"]
                figures.append(f"by traffic, {change}: write reaches the controller -> new verdict on every "
                               f"affected path p50 {handed['p50'] / 1000:.1f} ms, p99 {handed['p99'] / 1000:.1f} ms; "
                               f"from the library call p50 {every['p50'] / 1000:.1f} ms, p99 "
                               f"{every['p99'] / 1000:.1f} ms ({every['samples']} changes, {summary['leaks']} leaks)")

            label_times = [write_to_programmed(lambda i=i: label(runtime, pods[i], {"bench": str(i)}))
                           for i in range(args.repeat)]
            policy_times = []
            for i in range(args.repeat):
                text = ("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
                        f"metadata: {{name: bench-deny-{i}}}\nspec:\n  order: 10\n"
                        f"  selector: bench == '{i}'\n  types: [Ingress]\n  ingress: [{{action: Deny}}]\n")
                policy_times.append(write_to_programmed(lambda text=text: apply_sources(runtime, [("p.yaml", text)])))
            for name, times in (("label change", label_times), ("new policy", policy_times)):
                totals = [t for t, _ in times]
                inside = [s for _, s in times]
                figures.append(f"{name}, write -> programmed on every host: p50 {pct(totals, .5) * 1000:.0f} ms, "
                               f"p99 {pct(totals, .99) * 1000:.0f} ms (controller's sync p50 "
                               f"{pct(inside, .5) * 1000:.0f} ms)")

            drift = []
            for i in range(args.repeat):
                host_ns = names.host_netns(args.name, spec.host_names()[i % args.hosts])
                subprocess.run(["ip", "netns", "exec", host_ns, "nft", "flush", "ruleset"], check=True)
                started = time.perf_counter()
                while subprocess.run(["ip", "netns", "exec", host_ns, "nft", "list", "tables"],
                                     capture_output=True, text=True).stdout.strip() == "":
                    time.sleep(0.01)
                drift.append(time.perf_counter() - started)
                time.sleep(0.2)
            figures.append(f"drift (flushed host table) repaired: p50 {statistics.median(drift) * 1000:.0f} ms, "
                           f"max {max(drift) * 1000:.0f} ms (resync every {args.resync:g} s)")

            pid = processes.read_pid(names.responder_pid_file(paths))
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            started = time.perf_counter()
            while launcher.ask(paths, {"op": "status"}, timeout=120)["responder"] in (None, pid):
                time.sleep(0.05)
            figures.append(f"killed responder serving again: {time.perf_counter() - started:.2f} s")

            # the reads are timed against a lab at rest: not while the passes after the repair still run
            for _ in range(3):
                launcher.ask(paths, {"op": "resync"}, timeout=120)
            time.sleep(args.resync)
            health = launcher.ask(paths, {"op": "status"}, timeout=120)
            figures.append(f"controller: one reconcile pass {health['last_pass_ms']:.0f} ms, "
                           f"memory {health['memory_kib'] / 1024:.0f} MiB RSS")
            src, dst = (f"{k.namespace}/{k.name}" for k in pods[:2])
            for argv in (["get", "pods"], ["explain", src, dst, "--port", "80"], ["status"]):
                walls = []
                for _ in range(5):
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "lab", *argv, "--lab", args.name], capture_output=True)
                    walls.append(time.perf_counter() - started)
                figures.append(f"`lab {' '.join(argv[:1])}` wall time: median of 5 {statistics.median(walls) * 1000:.0f} ms")
        finally:
            runtime.close()
    finally:
        pipeline.down(args.name, force=True)
        print(f"controller benchmark: {args.hosts} hosts, {args.services} services, {args.repeat} repeats")
        for line in figures:
            print("  " + line)


if __name__ == "__main__":
    main()
