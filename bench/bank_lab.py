"""Benchmark: the 1500-microservice bank end to end through the lab, as a user would run it.

    sudo .venv/bin/python bench/bank_lab.py [--hosts 16] [--services 1500]

`lab up` of the hosts, then `lab apply` of the bank's YAML (pods placed, plumbed, announced over BGP and
filtered on every host), time until every host has every route, a verification of the whole world with
real packets against the oracle (every allowed pair and a sample of denied ones), one label change
enforced everywhere, and `lab delete` of everything. Prints figures; runs in private state directories
and always tears the lab down.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from lab.pod_plans import pod_plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--services", type=int, default=1500)
    parser.add_argument("--name", default="bankbench")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="npl-bench-"))
    os.environ["NETPOL_LAB_STATE"] = str(tmp / "state")
    os.environ["NETPOL_LAB_RUN"] = str(tmp / "run")
    from lab import pipeline
    from lab.apply import apply_sources, delete_keys, key_for, key_of, label, raw_documents
    from lab.fabric import Fabric
    from lab.labfile import parse_lab
    from lab.runtime import LabRuntime
    from lab.traffic_hooks import expected_verdicts, probe_endpoints
    from policy_dataplane.policy.bankgen import BankSpec, bank_yaml, egress_label
    from traffic.measure import measure_matrix
    from traffic.model import Protocol
    from traffic.probes import ProbeEngine

    spec = parse_lab({"name": args.name, "hosts": args.hosts, "ipam": {"pool": "10.48.0.0/16"}}, "<bench>", tmp)
    bank = BankSpec(services=args.services, fixed_ips=False)
    text = bank_yaml(bank)
    figures: dict[str, float] = {}

    def timed(name: str, action):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = action()
        figures[name] = time.perf_counter() - started
        return result

    try:
        timed("lab up (hosts, BGP mesh, base filters)", lambda: pipeline.up(spec, timeout=300))
        with LabRuntime.open(args.name) as runtime:
            timed("lab apply (pods, addresses, plumbing, filters)", lambda: apply_sources(runtime, [("bank.yaml", text)]))
            timed("every host has every route", lambda: Fabric(runtime).wait_converged(timeout=300))
            endpoints = probe_endpoints(args.name)

            def verify():  # type: ignore[no-untyped-def]
                with ProbeEngine() as engine:
                    return measure_matrix(engine, endpoints,
                                          lambda pairs, proto, port: expected_verdicts(args.name, pairs, proto, port),
                                          Protocol.TCP, bank.port)

            report = timed("verify: probes vs oracle", verify)
            pod = pod_plans(runtime)[0]
            doc = runtime.store.get_object(key_for("pod", pod.key))
            assert doc is not None
            changed = next(k for k in doc["metadata"]["labels"] if k.startswith(egress_label("")))
            timed("one label change enforced on every host", lambda: label(runtime, key_for("pod", pod.key),
                                                                           {changed: None}))
            keys = [key_of(doc) for doc in raw_documents([("bank.yaml", text)])]
            timed("lab delete (everything)", lambda: delete_keys(runtime, keys))
    finally:
        timed("lab down", lambda: pipeline.down(args.name, force=True))
    print(f"bank of {args.services} services on {args.hosts} hosts")
    for name, seconds in figures.items():
        print(f"  {name:<46} {seconds:8.2f} s")
    print(f"  verified {len(report.records)} of {report.total_pairs} pairs with real packets: "
          f"{report.mismatches} mismatches")


if __name__ == "__main__":
    main()
