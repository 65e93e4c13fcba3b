"""Policy model figures at the bank's scale (docs/ARCHITECTURE.md, Scenarios): prints, asserts nothing.

    .venv/bin/python bench/policy_model.py [--services 1500] [--repeat 100]

Goals (issue 3): load and index under 1 s, one label change under 1 ms, full matrix under 10 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from policy_dataplane.policy.bankgen import (
    OPT_IN_LABEL,
    BankSpec,
    bank_documents,
    bank_objects,
    bank_yaml,
    egress_label,
)
from policy_dataplane.policy.bulk import matrix
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.evaluate import verdict
from policy_dataplane.policy.world import World

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    spec = BankSpec(services=args.services)

    docs = bank_documents(spec)
    labels = sum(len(d["metadata"].get("labels", {})) for d in docs if d["kind"] == "Pod")
    egress = sum(1 for d in docs if d["kind"] == "Pod" for k in d["metadata"]["labels"] if k.startswith(egress_label("")))
    print(f"bank: {spec.services} services, {egress} egress rules ({egress / spec.services:.2f} per service), "
          f"{labels} pod labels, {sum(d['kind'] == 'NetworkPolicy' for d in docs)} ingress policies")

    text, t_yaml = timed(lambda: bank_yaml(spec))
    _, t_parse = timed(lambda: load_text(text, "bank.yaml"))
    print(f"YAML text of the bank ({len(text) / 1e6:.1f} MB) written in          {ms(t_yaml)}")
    print(f"YAML parsed and validated into model objects               {ms(t_parse)}")
    objects, t_convert = timed(lambda: bank_objects(spec))
    print(f"documents validated into model objects (no YAML)           {ms(t_convert)}")
    world, t_index = timed(lambda: World.from_objects(objects))
    print(f"load + index (World.apply of every object)                 {ms(t_index)}"
          f"   [{len(world.index.selectors())} selectors, goal < 1 s]")

    rng = random.Random(5)
    pods = sorted(world.pods)
    durations: list[float] = []
    for i in range(args.repeat):
        ns, name = rng.choice(pods)
        target = egress_label(f"s{rng.randrange(spec.services):04d}")
        kind = i % 3
        if kind == 0:
            change: dict[str, str | None] = {target: "true"}
        elif kind == 1:
            existing = [k for k in world.pods[(ns, name)].labels if k.startswith(egress_label(""))]
            change = {existing[0] if existing else target: None}
        else:
            change = {OPT_IN_LABEL: None if OPT_IN_LABEL in world.pods[(ns, name)].labels else "true"}
        _, t = timed(lambda: world.label_pod(ns, name, **change))
        durations.append(t)
    durations.sort()
    print(f"one label change (median of {args.repeat})                        {ms(statistics.median(durations))}"
          f"   p90 {ms(durations[int(len(durations) * 0.9)]).strip()}  max {ms(durations[-1]).strip()}  [goal < 1 ms]")

    world = World.from_objects(objects)
    m, t_matrix = timed(lambda: matrix(world, "TCP", spec.port))
    n = len(m.endpoints)
    print(f"full {n}x{n} matrix, TCP/{spec.port}                           {ms(t_matrix)}"
          f"   [{int(m.allowed.sum())} allowed pairs, goal < 10 s]")
    _, t_other = timed(lambda: matrix(world, "TCP", spec.port + 1))
    print(f"full matrix, TCP/{spec.port + 1} (nothing allowed to opted-in pods)     {ms(t_other)}")

    pairs = [(rng.choice(pods), rng.choice(pods)) for _ in range(1000)]
    _, t_pairs = timed(lambda: [verdict(world, s, d, "TCP", spec.port) for s, d in pairs])
    print(f"single-pair oracle with trace (mean of 1000)               {ms(t_pairs / 1000)}")

    dry = World.from_objects(bank_objects(BankSpec(services=args.services, dry_run=True, opt_in_fraction=0.5)))
    m2, t_dry = timed(lambda: matrix(dry, "TCP", spec.port))
    print(f"full matrix with the order-9001 dry-run policy, half opted in {ms(t_dry)}"
          f"   [{int(m2.allowed.sum())} allowed pairs]")


if __name__ == "__main__":
    main()
