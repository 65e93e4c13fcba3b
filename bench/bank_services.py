"""Benchmark: the bank with a Service per service and 50 ExternalServices, from its rule-file tree.

    sudo .venv/bin/python bench/bank_services.py [--hosts 16] [--services 1500] [--externals 50] [--pairs 300]

Writes the bank's rule-file tree and compiles it (timed: the full-size tree, ~13,000 rule files, and a check
that the compiled objects equal the generator's), brings up the hosts with cluster DNS and one external host
per external name, applies the bank (pods and policies), then a Service per service, then the
ExternalServices (each a gateway pod, Service and policy) and reports each apply's time and the services
table. Then the new-flow RTT: a TCP SYN to a Service's ClusterIP (DNAT on the source host) against a SYN
straight to a backend pod, for the same allowed pairs, every probe a new flow. Prints figures; private state
directories; always tears the lab down.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def service_documents(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ClusterIP Service per bank service: port 80 to the pods' named port `http` (8080)."""
    return [{"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"]},
             "spec": {"selector": {"app": p["metadata"]["labels"]["app"]},
                      "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}} for p in pods]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--services", type=int, default=1500)
    parser.add_argument("--externals", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=300, help="allowed pairs probed for the RTT comparison")
    parser.add_argument("--name", default="banksvc")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="npl-bench-"))
    os.environ["NETPOL_LAB_STATE"] = str(tmp / "state")
    os.environ["NETPOL_LAB_RUN"] = str(tmp / "run")
    from lab import pipeline, service_targets, services
    from lab.apply import apply_sources
    from lab.banktree import TreeSpec, compile_tree, dump, external_hosts, generate
    from lab.labfile import parse_lab
    from lab.runtime import LabRuntime, expected_verdicts, probe_endpoints
    from lab.services import lab_services
    from policy_dataplane.policy.bankgen import BankSpec, bank_documents, egress_label
    from services.nat import render
    from traffic.latency import percentiles
    from traffic.model import Probe, Protocol
    from traffic.probes import run_probes

    bank = BankSpec(services=args.services, fixed_ips=False)
    figures: dict[str, float] = {}

    def timed(name: str, action):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = action()
        figures[name] = time.perf_counter() - started
        return result

    tree = tmp / "tree"
    rules = timed("write the rule-file tree", lambda: generate(TreeSpec(bank=bank, externals=args.externals), tree))
    compiled = timed("compile the tree", lambda: compile_tree(tree))
    assert not compiled.problems, compiled.problems[:5]
    without_gateways = [d for d in compiled.documents if d["kind"] != "ExternalService"]
    same = [{**d, "metadata": {**d["metadata"], "labels": {k: v for k, v in d["metadata"].get("labels", {}).items()
                                                            if not k.startswith("egress.monzo.com/")}}}
            if d["kind"] == "Pod" else d for d in without_gateways] == bank_documents(bank)
    hosts = external_hosts(args.externals)
    lab = parse_lab({"name": args.name, "hosts": args.hosts, "ipam": {"pool": "10.48.0.0/16"},
                     "clusterDNS": {"replicas": 2},
                     # one server outside answers every external name (50 externals would be 50 BGP speakers)
                     "externals": [{"name": "partners", "dnsNames": hosts, "ports": [{"containerPort": 443}]}]},
                    "<bench>", tmp)
    pods = [d for d in compiled.documents if d["kind"] == "Pod"]
    gateways = [d for d in compiled.documents if d["kind"] == "ExternalService"]
    rest = [d for d in compiled.documents if d["kind"] != "ExternalService"]
    try:
        timed(f"lab up (hosts, DNS pods, 1 external with {args.externals} names)", lambda: pipeline.up(lab, timeout=300))
        runtime = LabRuntime.open(args.name)
        try:
            timed("apply the bank (pods, policies)", lambda: apply_sources(runtime, [("bank", dump(rest))]))
            timed(f"apply {len(pods)} Services", lambda: apply_sources(runtime, [("svc", dump(service_documents(pods)))]))
            timed(f"apply {len(gateways)} ExternalServices", lambda: apply_sources(runtime, [("es", dump(gateways))]))
            timed("sync again, nothing changed", lambda: services.sync(runtime))
            state = lab_services(runtime)
            timed("read Services and endpoints from the store", lambda: lab_services(runtime))
            timed("render the services table", lambda: render(state.endpoints()))
            services._nat_state_file(runtime).unlink()
            timed("rewrite every host's services table", lambda: services.program_hosts(runtime, state))
            runtime.fabric().wait_converged(timeout=300)
            endpoints = probe_endpoints(args.name)
            by_name = {e.name: e for e in endpoints}
            rng = random.Random(7)
            key_of = {p["metadata"]["name"]: f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods}
            candidates = [(key_of[s["metadata"]["name"]], key_of[label.removeprefix(egress_label(""))])
                          for s in rng.sample(pods, min(len(pods), args.pairs))
                          for label in s["metadata"]["labels"] if label.startswith(egress_label(""))][: args.pairs]
            src_dst = [(by_name[s], by_name[d]) for s, d in candidates]  # declared egress: allowed pairs
            allowed = [p for p, ok in zip(src_dst, expected_verdicts(args.name, src_dst, "tcp", bank.port)) if ok]
            allowed = allowed[: args.pairs]
            service_eps = {d.name: service_targets.probe_endpoint(runtime, f"svc/{d.name}") for _, d in allowed}
        finally:
            runtime.close()
        # interleaved, so both see the same load: pod, Service, pod, Service...
        mixed = run_probes([probe for s, d in allowed for probe in (
            Probe(s, d, Protocol.TCP, bank.port), Probe(s, service_eps[d.name], Protocol.TCP, 80))])
        direct, via = mixed[0::2], mixed[1::2]
    finally:
        timed("lab down", lambda: pipeline.down(args.name, force=True))
    print(f"bank of {args.services} services on {args.hosts} hosts, {len(gateways)} ExternalServices "
          f"({args.externals} external hosts), {rules} rule files; compile == generator: {same}")
    print(f"  services table: {len(state.services)} Services, "
          f"{sum(len(e) for s in state.endpoints() for _, e in s.by_port)} endpoints")
    for name, seconds in figures.items():
        print(f"  {name:<46} {seconds:8.2f} s")
    for what, results in (("straight to the pod", direct), ("through the Service (DNAT)", via)):
        rtts = [r.rtt_us for r in results if r.rtt_us is not None]
        p = percentiles(rtts) if rtts else {}
        print(f"  new-flow RTT {what:<28} {len(rtts)}/{len(results)} answered, "
              + (f"p50 {p['p50']:.1f} µs, p90 {p['p90']:.1f} µs, mean {statistics.mean(rtts):.1f} µs" if rtts else "-"))


if __name__ == "__main__":
    main()
