"""Matrix, latency and policy-latency runs on the small lab, through the library and through the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import types
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.integration.traffic.conftest import SmallLab, nft, nft_rules
from topology import names
from traffic.changes import nft_deny_change
from traffic.latency import CROSS_HOST, SAME_HOST, latency_pairs
from traffic.matrix_render import print_report
from traffic.measure import measure_latency, measure_matrix
from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.policy_latency import AffectedPath, Change, summarise
from traffic.policy_latency_render import summary_table
from traffic.probes import ProbeEngine
from traffic.stream import StreamOptions, run_experiment

pytestmark = pytest.mark.root


def allow_all(pairs, protocol, port):  # type: ignore[no-untyped-def]
    return [True] * len(pairs)


@pytest.mark.on_every_engine
@pytest.mark.parametrize("protocol", list(Protocol))
def test_matrix_without_policies_is_all_allowed_and_as_expected(small_lab: SmallLab, protocol: Protocol) -> None:
    endpoints = list(small_lab.endpoints.values())
    with ProbeEngine() as engine:
        report = measure_matrix(engine, endpoints, allow_all, protocol, 5000)
    n = len(endpoints)
    assert len(report.records) == report.total_pairs == n * (n - 1)
    assert report.mismatches == 0
    assert {r.measured for r in report.records} == {"allow"}
    data = json.loads(json.dumps(report.to_json()))
    assert data["mismatches"] == 0
    assert set(data["records"][0]) >= {"src", "dst", "protocol", "port", "expected", "measured", "rtt_us"}
    assert all(rec["rtt_us"] is not None for rec in data["records"])
    console = Console(record=True, width=200, file=io.StringIO())
    print_report(report, console)
    text = console.export_text()
    assert "0 mismatches" in text and "ns0/p0" in text and "✓" in text


def test_matrix_shows_a_drop_as_a_mismatch(small_lab: SmallLab) -> None:
    endpoints = list(small_lab.endpoints.values())
    src, dst = small_lab["ns0/p0"], small_lab["ns1/p3"]
    with nft_rules(small_lab.host_netns("h1"), [f"ct state new ip saddr {src.ip} ip daddr {dst.ip} drop"]):
        with ProbeEngine() as engine:
            report = measure_matrix(engine, endpoints, allow_all, Protocol.TCP, 80)
    [wrong] = [r for r in report.records if r.mismatch]
    assert (wrong.src, wrong.dst, wrong.expected, wrong.measured) == ("ns0/p0", "ns1/p3", "allow", "deny")
    console = Console(record=True, width=200, file=io.StringIO())
    print_report(report, console)
    assert "D!" in console.export_text()


def test_latency_groups_same_host_and_cross_host_under_two_conditions(small_lab: SmallLab) -> None:
    """'With policy' here is 2000 linear non-matching nft rules on h1: a real per-packet cost."""
    pairs = latency_pairs(list(small_lab.endpoints.values()), per_class=3)

    @contextmanager
    def linear_rules():  # type: ignore[no-untyped-def]
        rules = [f"ip saddr 192.0.2.{i % 250 + 1} tcp dport {1 + i} drop" for i in range(2000)]
        with nft_rules(small_lab.host_netns("h1"), rules):
            yield

    with ProbeEngine() as engine:
        run = measure_latency(engine, pairs, Protocol.ICMP, 0, 50,
                              {"no policy": _nothing,
                               "2000 rules": linear_rules})
    summary = run.summary()
    for condition in ("no policy", "2000 rules"):
        assert set(summary[condition]) == {SAME_HOST, CROSS_HOST}
        for row in summary[condition].values():
            assert row["samples"] == 3 * 50 and row["dropped"] == 0
            assert 0 < row["p50"] <= row["p90"] <= row["p99"]


@contextmanager
def _nothing():  # type: ignore[no-untyped-def]
    yield


def test_policy_latency_with_a_plain_nft_rule_prints_a_distribution(small_lab: SmallLab) -> None:
    destination = small_lab["ns0/p2"]
    denied = [small_lab["ns0/p0"], small_lab["ns1/p3"]]
    allowed = [small_lab["ns1/p1"]]
    repetitions = 4

    def make(i: int):  # type: ignore[no-untyped-def]
        return nft_deny_change(f"deny-{i}", destination, denied, allowed, Protocol.TCP, 80)

    with ProbeEngine() as engine:
        outcomes = run_experiment(engine, make, repetitions, StreamOptions(rate=3000, window=2.0))
    summary = summarise(outcomes)
    assert summary["per_path_us"]["samples"] == repetitions * 2  # the two denied paths; the control is not timed
    assert summary["per_path_us"]["missing"] == 0
    assert summary["baseline_wrong"] == 0 and summary["flaps"] == 0  # the control path never dropped
    for outcome in outcomes:
        for path in outcome.timed:
            assert path.latency_us is not None and path.latency_us > 0  # nothing turns before the write
        assert outcome.all_paths_us == max(p.latency_us for p in outcome.timed)
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(summary_table(summary, "nft deny"))
    text = console.export_text()
    assert f"{repetitions * 2}" in text and "p50 ms" in text
    print(text)


# --- the CLI, with lab.traffic_hooks replaced by the small lab ------------------------------------------------


@pytest.fixture
def cli(small_lab: SmallLab, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import lab
    import lab.commands.latency  # noqa: F401  (each module registers its command)
    import lab.commands.matrix  # noqa: F401
    import lab.commands.policy_latency  # noqa: F401
    import lab.commands.probe  # noqa: F401
    from lab.app import app

    fake = types.ModuleType("lab.traffic_hooks")
    fake.probe_endpoints = lambda name, hosts=False: list(small_lab.endpoints.values())  # type: ignore[attr-defined]
    fake.expected_verdicts = lambda name, pairs, protocol, port: [True] * len(pairs)  # type: ignore[attr-defined]
    fake.latency_conditions = lambda name: {"as-is": nullcontext}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lab.traffic_hooks", fake)
    monkeypatch.setattr(lab, "traffic_hooks", fake, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--lab", "tr1"], catch_exceptions=False)


def test_cli_probe(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("probe", "ns0/p0", "ns1/p3", "--protocol", "udp", "--port", "53", "--count", "5", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["verdict"], data["delivered"], data["evidence"]) == ("allow", 5, ["port-unreachable"])


def test_cli_matrix_json_table_and_heat_map(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("matrix", "--json", "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mismatches"] == 0 and data["probed"] == 30
    assert (tmp_path / "m.png").stat().st_size > 1000
    assert json.loads((tmp_path / "m.json").read_text())["mismatches"] == 0
    table = cli("matrix", "--namespaces", "ns0,ns1", "--out", str(tmp_path / "t"))
    assert table.exit_code == 0 and "(0 mismatches of 12 probed)" in " ".join(table.stdout.split())


def test_cli_latency_and_policy_latency(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("latency", "--count", "20", "--pairs", "2", "--json", "--out", str(tmp_path / "l"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["conditions"]["as-is"]["same-host"]["samples"] == 40
    assert (tmp_path / "l.png").exists()
    result = cli("policy-latency", "--change", "nft", "--repetitions", "3", "--rate", "2000",
                 "--out", str(tmp_path / "pl.json"))
    assert result.exit_code == 0, result.output
    assert "per affected path" in result.stdout
    report = json.loads((tmp_path / "pl.json").read_text())
    assert report["summary"]["per_path_us"]["samples"] == 3 * 2  # built-in change: 2 of 4 sources denied
    assert (tmp_path / "pl.png").exists()


def new_pod_change(small_lab: SmallLab, name: str, rule_first: bool, late: float = 0.3):  # type: ignore[no-untyped-def]
    """A pod created while probes stream to it: ns0/p0 must be denied (a plain nft rule on h1), ns0/p2 and
    ns1/p3 allowed. With `rule_first` the rule is in place before the pod exists; otherwise it comes
    `late` seconds after the pod, and the stream must see the leak."""
    scratch = small_lab.scratch
    ip = scratch.block(0).network_address + 200
    pod = ProbeEndpoint("ns0/new", names.pod_netns(scratch.lab, "ns0", "new"), ip, "pod", "ns0", "h1")
    denied, allowed = small_lab["ns0/p0"], [small_lab["ns0/p2"], small_lab["ns1/p3"]]
    h1 = small_lab.host_netns("h1")
    rule = f"table inet trnew {{\n chain c {{\n  type filter hook forward priority 0;\n" \
           f"  ip saddr {denied.ip} ip daddr {ip} drop\n }}\n}}\n"

    def prepare() -> None:
        if rule_first:
            nft(h1, rule)

    def apply() -> None:
        scratch.add_pod(0, "ns0", "new", ip)
        if not rule_first:
            time.sleep(late)
            nft(h1, rule)

    def revert() -> None:
        scratch.remove_pod(0, "ns0", "new")
        subprocess.run(["ip", "netns", "exec", h1, "nft", "delete", "table", "inet", "trnew"],
                       capture_output=True, check=False)

    paths = (AffectedPath(Probe(denied, pod, Protocol.TCP, 80), after=False, before=None),
             *(AffectedPath(Probe(src, pod, Protocol.TCP, 80), after=True, before=None) for src in allowed))
    return Change(name, paths, apply=apply, revert=revert, prepare=prepare)


def test_new_pod_enforced_from_its_first_packet_has_no_leak(small_lab: SmallLab) -> None:
    with ProbeEngine() as engine:
        outcomes = run_experiment(engine, lambda i: new_pod_change(small_lab, f"new-{i}", True), 2,
                                  StreamOptions(rate=3000, window=3.0))
    for outcome in outcomes:
        assert outcome.leaks == 0
        assert outcome.enforced_us is not None and outcome.enforced_us > 0
    assert summarise(outcomes)["enforced_us"]["samples"] == 2


def test_new_pod_whose_rule_comes_late_leaks(small_lab: SmallLab) -> None:
    with ProbeEngine() as engine:
        [outcome] = run_experiment(engine, lambda i: new_pod_change(small_lab, "late", False), 1,
                                   StreamOptions(rate=3000, window=3.0))
    assert outcome.leaks > 0
    [denied_path] = [p for p in outcome.paths if not p.path.after]
    assert denied_path.flaps == 0 or denied_path.leaks >= denied_path.flaps
