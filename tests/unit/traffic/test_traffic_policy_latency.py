"""The analysis of a probe stream around a change: latency, resolution, flaps, leaks, baseline."""

from __future__ import annotations

from ipaddress import IPv4Address

from traffic.model import Probe, ProbeEndpoint, Protocol
from traffic.policy_latency import AffectedPath, Send, analyse, distribution, summarise

A = ProbeEndpoint("a/a", "na", IPv4Address("10.0.0.1"))
B = ProbeEndpoint("a/b", "nb", IPv4Address("10.0.0.2"))
WRITE = 1_000_000_000


def path(after: bool, before: bool | None = True) -> AffectedPath:
    return AffectedPath(Probe(A, B, Protocol.TCP, 80), after=after, before=before)


def stream(verdicts: str, start: int = WRITE - 3_000_000, step: int = 1_000_000) -> list[Send]:
    """'1' delivered, '0' dropped, one send every `step` ns from `start`."""
    return [Send(0, start + i * step, v == "1") for i, v in enumerate(verdicts)]


def test_deny_latency_is_first_dropped_probe_after_the_write() -> None:
    outcome = analyse("deny", [path(after=False)], stream("111" + "111" + "000"), WRITE, WRITE + 500_000)
    [p] = outcome.paths
    assert p.latency_us == 3_000.0  # sends at -3, -2, ... ms: the first drop is the one at +3 ms
    assert p.resolution_us == 1_000.0
    assert (p.flaps, p.leaks, p.baseline_wrong, p.probes) == (0, 0, 0, 9)
    assert outcome.write_us == 500.0
    assert outcome.all_paths_us == 3_000.0


def test_flaps_and_baseline_errors_are_counted() -> None:
    [p] = analyse("deny", [path(after=False)], stream("101" + "0101"), WRITE, WRITE).paths
    assert p.baseline_wrong == 1  # a drop before the write, when the path was allowed
    assert p.latency_us == 0.0 and p.flaps == 2  # dropped at the write, then delivered twice more


def test_never_turning_is_missing_not_zero() -> None:
    outcome = analyse("deny", [path(after=False)], stream("1111111"), WRITE, WRITE)
    assert outcome.paths[0].latency_us is None and outcome.all_paths_us is None
    assert distribution([None, 5.0])["missing"] == 1


def test_new_pod_leaks_and_enforcement() -> None:
    denied = AffectedPath(Probe(A, B, Protocol.TCP, 80), after=False, before=None)
    allowed = AffectedPath(Probe(B, A, Protocol.TCP, 80), after=True, before=None)
    sends = [Send(0, WRITE + i * 1000, v == "1") for i, v in enumerate("00100")] + [
        Send(1, WRITE + i * 1000, v == "1") for i, v in enumerate("00011")]
    outcome = analyse("new pod", [denied, allowed], sends, WRITE, WRITE)
    assert outcome.leaks == 1  # the denied path delivered once: the pod was up before its filter
    assert outcome.enforced_us == 3.0
    denied_outcome = outcome.paths[0]
    assert denied_outcome.latency_us == 3.0  # the first drop once the pod is up, not the trivial early ones
    assert denied_outcome.flaps == 0
    summary = summarise([outcome])
    assert summary["leaks"] == 1 and summary["enforced_us"]["samples"] == 1
    assert summary["per_path_us"]["samples"] == 2


def test_control_paths_are_not_timed_but_their_disruptions_count() -> None:
    control = path(after=True, before=True)
    outcome = analyse("deny", [path(after=False), control],
                      stream("111000") + [Send(1, s.sent_ns, s.delivered) for s in stream("111101")], WRITE, WRITE)
    changing, steady = outcome.paths
    assert steady.latency_us is None and steady.flaps == 1
    assert outcome.timed == (changing,)
    assert outcome.all_paths_us == changing.latency_us == 0.0
    assert summarise([outcome])["per_path_us"]["samples"] == 1


def test_a_write_that_reports_its_hand_over_is_also_timed_from_the_controller() -> None:
    sends = stream("111" + "111" + "000")
    outcome = analyse("deny", [path(after=False)], sends, WRITE, WRITE + 2_500_000, reached_ns=WRITE + 2_000_000)
    assert (outcome.handover_us, outcome.all_paths_us, outcome.from_controller_us) == (2_000.0, 3_000.0, 1_000.0)
    unknown = analyse("deny", [path(after=False)], sends, WRITE, WRITE + 2_500_000)
    assert unknown.from_controller_us is None
    assert summarise([outcome, unknown])["from_controller_us"]["samples"] == 1
