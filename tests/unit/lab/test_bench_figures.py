"""`lab bench`'s pure parts: ratios and formatting, figures assembled from measurements, the page and the
table built from them, program sizes per backend, the `none` backend, and the command's argument checks."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from lab.bench.bringup import BringUp
from lab.bench.cost import CostRun
from lab.bench.figures import BASELINE, Figure, display, display_ratio, ratio
from lab.bench.programming import (
    Programming,
    ProgramSize,
    label_change_target,
    program_size,
    time_label_changes,
)
from lab.bench.report import render_html
from lab.bench.run import BenchOptions, DataplaneRun, assemble
from lab.bench.table import bench_table
from lab.bench.verify import Verification, group_grid
from lab.cli import app, register_commands
from policy_dataplane.dataplane.lab_dataplane import Dataplane
from policy_dataplane.policy.bankgen import EGRESS_LABEL_PREFIX, BankSpec, bank_objects
from policy_dataplane.policy.world import World
from topology import names
from traffic.model import ProbeEndpoint

register_commands()


def test_ratio_is_value_over_baseline_and_none_when_undefined() -> None:
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(0.0, 0.0) == 1.0
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None and ratio(1.0, math.nan) is None
    figure = Figure("k", "S", "label", "s", {"nftables": 1.0, "iptables": 4.0, "none": None})
    assert figure.ratio("nftables") == 0.25 and figure.ratio("none") is None
    assert figure.to_json(("nftables", "iptables", "none"))["ratios"] == {"nftables": 0.25, "iptables": 1.0,
                                                                          "none": None}


@given(st.floats(min_value=0.001, max_value=1e9))
def test_display_keeps_three_significant_digits(value: float) -> None:
    shown = float(display(value).replace(",", ""))
    assert shown == pytest.approx(value, rel=0.01, abs=0.0005)


def test_display_of_counts_and_missing_values() -> None:
    assert display(1234.4, "count") == "1,234" and display(None) == "—" and display(math.nan) == "—"
    assert display_ratio(None) == "—" and display_ratio(5.0) == "5.00×"


def _run(scale: float, latency: bool = True, conntrack: list[float] | None = None) -> DataplaneRun:
    cost = CostRun([0, 10, 50, 100], [0, 3, 15, 30], [[30.0 * scale, 32.0], [31.0 * scale], [33.0 * scale], [40.0 * scale]],
                   [[50.0], [51.0], [52.0], [53.0 * scale]], conntrack or [])
    return DataplaneRun(
        BringUp({"fabric": 1.0 * scale, "bgp": 2.0}, up_s=3.0 * scale, bgp_converged_s=0.5, apply_s=1.0 * scale,
                kernel_mib=10.0, process_pss_mib=100.0, processes=5),
        Programming(0.01 * scale, 0.2 * scale, ProgramSize(int(300 * scale), 30, 316)),
        {"policy": [1000.0 * scale, 2000.0 * scale, None], "label": [500.0 * scale], "pod": [700.0 * scale]}
        if latency else None,
        cost,
        Verification(pairs=870, mismatches=0, delivered=200, oracle_s=0.1, prepare_s=0.2, probing_s=0.5 * scale,
                     waited_s=1.0, heatmap={"groups": ["a", "b"], "probed": [[1, 2], [3, 4]],
                                            "allowed": [[1, 0], [3, 1]], "mismatches": [[0, 0], [0, 1]]}),
    )


def _result():  # type: ignore[no-untyped-def]
    runs = {"nftables": _run(1.0, conntrack=[35.0, 36.0, 37.0]), "iptables": _run(2.0), "none": _run(0.5, latency=False)}
    return assemble(BenchOptions(30, 2, ("nftables", "iptables", "none"), quick=True), runs)


def test_assemble_turns_measurements_into_figures_with_ratios() -> None:
    result = _result()
    assert result.figure("bringup.up_s").values == {"nftables": 3.0, "iptables": 6.0, "none": 1.5}
    assert result.figure("bringup.up_s").ratio("nftables") == 0.5
    assert result.figure("programming.program_ms").values["iptables"] == pytest.approx(400.0)
    policy = result.figure("latency.policy.max_ms").values
    assert policy == {"nftables": 2.0, "iptables": 4.0, "none": None}  # µs -> ms; none enforces nothing
    assert result.figure("latency.policy.samples").values["nftables"] == 2
    assert result.figure("latency.policy.missing").values["nftables"] == 1
    assert result.figure("cost.new_flow_100_us").values == {"nftables": 40.0, "iptables": 80.0, "none": 20.0}
    assert result.figure("cost.new_flow_above_none_us").values == {"nftables": 20.0, "iptables": 60.0, "none": 0.0}
    # the conntrack-only floor is measured on the nftables lab alone
    assert result.figure("cost.conntrack_above_none_us").values == {"nftables": 16.0, "iptables": None, "none": None}
    assert result.figure("verify.probes_per_s").values["nftables"] == 870 / 0.5
    assert result.figure("verify.total_s").values["nftables"] == pytest.approx(1.8)
    assert result.latency_samples["policy"]["nftables"] == [1000.0, 2000.0]
    assert result.cost["nftables"]["new_flow_p50_us"] == [30.0, 31.0, 33.0, 40.0]
    data = result.to_json()
    assert data["baseline"] == BASELINE and data["size"] == {"services": 30, "hosts": 2, "quick": True}


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.images: list[str] = []
        self._open: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and "data-figure" in a:
            self._open = (str(a["data-figure"]), str(a["data-dataplane"]))
        if tag == "img":
            self.images.append(str(a.get("src")))

    def handle_data(self, data: str) -> None:
        if self._open:
            self.cells[self._open] = data
            self._open = None


def test_page_shows_every_figure_as_displayed_and_four_inline_plots() -> None:
    result = _result()
    page = render_html(result)
    parser = _Cells()
    parser.feed(page)
    for figure in result.figures:
        for d in result.dataplanes:
            assert parser.cells[(figure.key, d)] == display(figure.values[d], figure.unit)
    assert len(parser.images) == 4 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert not re.search(r"(src|href)=\"https?:", page)  # self-contained: nothing fetched


def test_table_has_a_row_per_figure() -> None:
    result = _result()
    console = Console(width=200, record=True)
    console.print(bench_table(result))
    text = console.export_text()
    assert "new-flow RTT p50, 100% of policies" in text and "0.50×" in text


def test_program_size_counts_what_each_backend_writes() -> None:
    from policy_dataplane.dataplane.nft.render import address_intervals

    world = World.from_objects(bank_objects(BankSpec(services=20)))
    hosts = {"h1": [(k, names.pod_host_ifname(*k)) for k in sorted(world.pods)]}
    program = Dataplane("u", backend="none").compile(world, hosts)["h1"]
    nft, ipt = program_size("nftables", program), program_size("iptables", program)
    assert nft.sets == ipt.sets == len(program.address_sets) + len(program.named_port_sets) > 0
    assert nft.rules > 20 and ipt.rules > 20
    # nft holds adjacent addresses as one range (fewer elements than ipset's), and adds the dispatch map entries
    ranges = sum(len(address_intervals(m)) for m in program.address_sets.values())
    named = sum(len(m) for m in program.named_port_sets.values())
    assert nft.elements == ranges + named + 2 * len(program.endpoints)
    assert ipt.elements == sum(len(m) for m in program.address_sets.values()) + named  # one per pod address
    assert ranges < sum(len(m) for m in program.address_sets.values())
    assert program_size("none", program) == ProgramSize(0, 0, 0)


def test_none_backend_compiles_and_reaches_no_kernel() -> None:
    world = World.from_objects(bank_objects(BankSpec(services=10)))
    dp = Dataplane("u", backend="none", host_netns=lambda h: f"no-such-netns-{h}")
    dp.install_base("h1")
    report = dp.sync(world, {"h1": [(k, names.pod_host_ifname(*k)) for k in sorted(world.pods)]})
    assert report.hosts["h1"].mode == "none" and report.hosts["h1"].commands == 0
    assert dp.programs["h1"].endpoints  # compiled all the same


def test_group_grid_counts_delivered_and_mismatches() -> None:
    from ipaddress import IPv4Address

    a = ProbeEndpoint("x/a", "n1", IPv4Address("10.0.0.1"), namespace="x")
    b = ProbeEndpoint("y/b", "n2", IPv4Address("10.0.0.2"), namespace="y")
    pairs = [(a, b), (b, a)]
    grid = group_grid(pairs, [True, False], [True, True])
    assert grid == {"groups": ["x", "y"], "probed": [[0, 1], [1, 0]], "allowed": [[0, 1], [1, 0]],
                    "mismatches": [[0, 0], [1, 0]]}


def test_bench_rejects_unknown_dataplanes_before_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    out = CliRunner().invoke(app, ["bench", "--dataplanes", "nftables,ebpf"])
    assert out.exit_code == 2 and "ebpf" in out.output


def test_bench_rejects_a_bad_prefix() -> None:
    out = CliRunner().invoke(app, ["bench", "--prefix", "Bench-1"])
    assert out.exit_code == 2 and "--prefix" in out.output


def test_bench_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    out = CliRunner().invoke(app, ["bench", "--quick"])
    assert out.exit_code == 1 and "needs root" in out.output


def test_label_changes_are_timed_and_change_the_program_then_revert_it() -> None:
    world = World.from_objects(bank_objects(BankSpec(services=20)))
    hosts = {"h1": [(k, names.pod_host_ifname(*k)) for k in sorted(world.pods)]}
    dp = Dataplane("u", backend="none", host_netns=lambda h: f"no-such-netns-{h}")
    before = dp.compile(world, hosts)["h1"]
    namespace, name, label = label_change_target(world)
    assert label.startswith(EGRESS_LABEL_PREFIX)
    changed = World.from_objects(bank_objects(BankSpec(services=20)))
    changed.label_pod(namespace, name, **{label: None})
    assert Dataplane("u", backend="none").compile(changed, hosts)["h1"] != before  # a change the kernel sees
    timings = time_label_changes(dp, world, hosts, rounds=3)
    assert len(timings) == 6 and all(t >= 0 for t in timings)
    assert world.pods[(namespace, name)].labels[label] == "true"
    assert dp.programs["h1"] == before  # the world and the program end as they began
