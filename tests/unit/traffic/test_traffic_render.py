"""Tables and pictures: what people read must show the mismatches and the sample counts."""

from __future__ import annotations

import io
from ipaddress import IPv4Address
from pathlib import Path

from rich.console import Console

from traffic.latency_render import latency_table, save_histogram
from traffic.matrix import all_pairs, build_report
from traffic.matrix_render import print_report, save_heat_map
from traffic.model import Probe, ProbeEndpoint, ProbeResult, Protocol
from traffic.policy_latency import distribution
from traffic.policy_latency_render import summary_table


def report_for(namespaces: int, per_namespace: int, wrong: set[int]):  # type: ignore[no-untyped-def]
    eps = [ProbeEndpoint(f"ns{n}/p{i}", f"x{n}-{i}", IPv4Address(0x0A000000 + n * 256 + i + 1))
           for n in range(namespaces) for i in range(per_namespace)]
    pairs = all_pairs(eps)
    expected = [a.group == b.group for a, b in pairs]
    measured = [ok != (i in wrong) for i, ok in enumerate(expected)]
    results = [ProbeResult(Probe(a, b, Protocol.TCP, 80), m, m, 5.0 if m else None, "rst" if m else "nothing")
               for (a, b), m in zip(pairs, measured)]
    return build_report(pairs, expected, results, Protocol.TCP, 80, len(pairs))


def rendered(report) -> str:  # type: ignore[no-untyped-def]
    console = Console(record=True, width=250, file=io.StringIO())
    print_report(report, console)
    return " ".join(console.export_text().split())  # titles wrap at the table width


def test_small_matrix_is_a_truth_table_with_the_mismatches_listed() -> None:
    report = report_for(2, 3, wrong={0, 4})
    text = rendered(report)
    assert "2 mismatches of 30 probed" in text
    assert "D!" in text and "A!" in text  # pair 0 is same-namespace (expected allow), pair 4 cross (deny)
    assert "mismatches" in text and "ns0/p0" in text


def test_large_matrix_is_summarised_by_namespace_pair(tmp_path: Path) -> None:
    report = report_for(5, 10, wrong={7})
    text = rendered(report)
    assert "src group" in text and "ns4" in text and "1 mismatches" in text
    png = save_heat_map(report, tmp_path / "m.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latency_table_and_histogram(tmp_path: Path) -> None:
    summary = {"as-is": {"same-host": {"samples": 3, "dropped": 0, "p50": 2.0, "p90": 3.0, "p99": 3.0, "mean": 2.0}}}
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(latency_table(summary, "rtt"))
    assert "same-host" in console.export_text()
    png = save_histogram({"as-is": {"same-host": [1.0, 2.0, 3.0], "cross-host": [4.0, 5.0]}}, tmp_path / "h.png", "t")
    assert png.stat().st_size > 1000


def test_policy_latency_table_shows_sample_counts() -> None:
    summary = {key: distribution([1000.0, 2000.0, None]) for key in
               ("per_path_us", "all_paths_us", "resolution_us", "write_us")}
    summary["enforced_us"] = distribution([])
    summary |= {"leaks": 0, "flaps": 1, "baseline_wrong": 0}
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(summary_table(summary, "t"))
    text = console.export_text()
    assert "│       2 │       1 │" in text  # 2 samples, 1 missing
    assert "flaps 1" in text and "creation" not in text  # no new pods: that row is left out
