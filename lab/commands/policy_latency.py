"""`lab policy-latency`: how long a policy change takes to show in the packets, with its distribution.

The change goes through the lab as a user's would (`lab.latency_changes`): `deny` applies a NetworkPolicy
that isolates one pod and admits half of the probing pods, `label` quarantines the pod with a label. `nft`
is the baseline without the lab: a plain nftables drop rule in the destination pod's namespace.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import LAB_OPTION_HELP, console, errors, fail, print_json, require_root
from traffic.model import Protocol
from traffic.policy_latency import Change


@app.command(name="policy-latency", rich_help_panel="Traffic")
def policy_latency(
    lab: str = typer.Option("demo", "--lab", "-l", help=LAB_OPTION_HELP),
    repetitions: int = typer.Option(10, "--repetitions", "-r", min=1),
    rate: float = typer.Option(2000.0, "--rate", help="probes per second over all affected paths"),
    protocol: Protocol = typer.Option(Protocol.TCP, "--protocol", "-p", case_sensitive=False),
    port: int = typer.Option(80, "--port", min=1, max=65535),
    sources: int = typer.Option(4, "--sources", min=2, help="pods probing the destination"),
    change: str = typer.Option("deny", "--change", help="deny (apply a policy), label (quarantine) or nft"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON report"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="JSON report file (a histogram PNG goes next to it)"),
) -> None:
    """While probes stream at a fixed rate, apply a change and time it until every path shows it."""
    require_root("lab policy-latency")  # raw sockets in the lab's namespaces
    import lab.runtime as runtime
    from traffic.changes import nft_deny_change
    from traffic.policy_latency import summarise
    from traffic.policy_latency_render import summary_table
    from traffic.probes import ProbeEngine
    from traffic.stream import StreamOptions, run_experiment

    if change not in ("deny", "label", "nft"):
        raise typer.BadParameter("deny, label or nft", param_hint="--change")
    pods = sorted((e for e in runtime.probe_endpoints(lab) if e.kind == "pod"), key=lambda e: e.name)
    if len(pods) < 3:
        fail("a policy-latency run needs at least 3 pods")
    # The probing pods: those that reach the destination now first (a change can only cut what flows).
    destination, candidates = pods[0], pods[1:]
    verdicts = runtime.expected_verdicts(lab, [(s, destination) for s in candidates], protocol.value, port)
    reaching = [s for s, allowed in zip(candidates, verdicts, strict=True) if allowed]
    others = [*reaching, *(s for s in candidates if s not in reaching)][:sources]
    if change == "nft":
        # only pods that reach the destination now: the rule's drop is the only change on their paths
        reaching = [s for s in others if s in reaching]
        denied, allowed = reaching[: (len(reaching) + 1) // 2], reaching[(len(reaching) + 1) // 2 :]

        def factory(i: int):  # type: ignore[no-untyped-def]
            return nft_deny_change(f"nft-deny-{i}", destination, denied, allowed, protocol, port)

        changes: AbstractContextManager[Callable[[int], Change]] = contextlib.nullcontext(factory)
    else:
        from lab.latency_changes import lab_changes

        reaches = dict(zip((s.name for s in candidates), verdicts, strict=True))
        changes = lab_changes(lab, change, destination, others, protocol, port,
                              before=[reaches[s.name] for s in others])
    with changes as make, ProbeEngine() as engine:
        if not make(0).paths or all(p.before == p.after for p in make(0).paths):
            fail(f"the {change} change would not alter any path from {len(others)} pods to {destination.name}")
        outcomes = run_experiment(engine, make, repetitions, StreamOptions(rate=rate))
    summary = summarise(outcomes)
    report = {"lab": lab, "rate": rate, "summary": summary, "changes": [
        {"change": o.change, "write_us": o.write_us, "all_paths_us": o.all_paths_us, "leaks": o.leaks,
         "paths": [{"src": p.path.probe.src.name, "dst": p.path.probe.dst.name, "after": p.path.after,
                    "latency_us": p.latency_us, "resolution_us": p.resolution_us, "flaps": p.flaps,
                    "probes": p.probes} for p in o.paths]}
        for o in outcomes]}
    if out:
        from traffic.latency_render import save_histogram

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))
        per_path = {"allow": [p.latency_us for o in outcomes for p in o.timed if p.path.after and p.latency_us],
                    "deny": [p.latency_us for o in outcomes for p in o.timed if not p.path.after and p.latency_us]}
        png = save_histogram({"to": {k: v for k, v in per_path.items() if v}}, out.with_suffix(".png"),
                             f"policy latency on {lab}", "write → first packet with the new verdict (µs)")
        errors.print(f"wrote {out} and {png}")
    if as_json:
        print_json(report)
    else:
        console.print(summary_table(summary, f"policy latency on {lab}: {len(outcomes)} changes at {rate:.0f} probes/s"))
