"""Probe throughput through a real Calico-plumbed dataplane: prints probes/s for a large batch.

Builds a scratch lab (`traffic.scratch_lab`, lab name `trbench`: 2 hosts, PODS pods), sends PROBES probes
spread over every ordered pod pair (one protocol per run, no policy: every probe should be answered), and
prints the rate, the share delivered and the RTT percentiles. Needs root. Cleans up on exit.

    .venv/bin/python bench/probe_throughput.py [--pods 50] [--probes 100000] [--protocol tcp]
"""

from __future__ import annotations

import argparse
import itertools
import time

from traffic.latency import percentiles
from traffic.model import Probe, Protocol
from traffic.probes import ProbeEngine
from traffic.scratch_lab import ScratchLab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument("--protocol", default="all", choices=[*(p.value for p in Protocol), "all"])
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--lab", default="trbench")
    args = parser.parse_args()

    half = args.pods // 2
    lab = ScratchLab(args.lab, pods_per_host=(args.pods - half, half), namespaces=5)
    protocols = list(Protocol) if args.protocol == "all" else [Protocol(args.protocol)]
    try:
        started = time.perf_counter()
        endpoints = [e for e in lab.up() if e.kind == "pod"]
        print(f"lab: {len(endpoints)} pods on 2 hosts up in {time.perf_counter() - started:.2f} s")
        pairs = [(a, b) for a, b in itertools.permutations(endpoints, 2)]
        with ProbeEngine() as engine:
            for protocol in protocols:
                probes = [Probe(a, b, protocol, args.port) for a, b in itertools.islice(
                    itertools.cycle(pairs), args.probes)]
                engine.prepare(probes)
                started = time.perf_counter()
                results = engine.run(probes)
                elapsed = time.perf_counter() - started - engine.options.reply_timeout * (
                    not all(r.delivered for r in results))
                delivered = sum(r.delivered for r in results)
                rtts = [r.rtt_us for r in results if r.rtt_us is not None]
                p = percentiles(rtts)
                print(
                    f"{protocol.value:5s} {len(probes):7d} probes in {elapsed:6.2f} s = {len(probes) / elapsed:8.0f} "
                    f"probes/s; delivered {delivered}/{len(probes)}; rtt_us p50 {p['p50']:.0f} "
                    f"p90 {p['p90']:.0f} p99 {p['p99']:.0f}"
                )
    finally:
        lab.down()


if __name__ == "__main__":
    main()
