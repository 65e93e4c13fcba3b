"""Link shaping without a kernel: durations, the tc and iptables text, the nfqueue messages, the delay
line's hold times, and the lab file's `links` / pod `link` fields."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.labfile import LabFileError, parse_lab
from topology import nfqueue
from topology.delayline import QueueConfig, hold_seconds
from topology.kernel_text import UnsafeText
from topology.link_shaper import queue_plan
from topology.shaping import LinkShape, ShapedLink, delayline_rules, duration_ms, tc_commands


@pytest.mark.parametrize(("text", "ms"), [("20ms", 20.0), ("500us", 0.5), ("0.1s", 100.0), (7, 7.0), ("3", 3.0)])
def test_durations(text: str | int, ms: float) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["20 msec", "-1ms", "fast", "61s", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        duration_ms(text)  # type: ignore[arg-type]


def link(**shape: float) -> ShapedLink:
    return ShapedLink("fabric link of node1", "npl-x-h-node1", "eth0", "npl-x-fabric", "nplh123", LinkShape(**shape))


def test_netem_on_both_ends_like_tclink() -> None:
    assert tc_commands(link(delay_ms=20, jitter_ms=2, loss_pct=1.5), "netem") == [
        ("npl-x-h-node1", ["tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:",
                           "netem", "delay", "20000us", "2000us", "loss", "1.5%"]),
        ("npl-x-fabric", ["tc", "qdisc", "replace", "dev", "nplh123", "root", "handle", "1:",
                          "netem", "delay", "20000us", "2000us", "loss", "1.5%"]),
    ]  # fmt: skip


def test_bandwidth_is_tbf_with_netem_under_it_and_alone_with_the_delay_line() -> None:
    both = [argv for _, argv in tc_commands(link(delay_ms=5, bandwidth_mbit=10), "netem")]
    assert [c[5:8] for c in both] == [["root", "handle", "1:"], ["parent", "1:1", "handle"]] * 2
    assert both[0][8:11] == ["tbf", "rate", "10mbit"]
    alone = [argv for _, argv in tc_commands(link(delay_ms=5, bandwidth_mbit=10), "delayline")]
    assert len(alone) == 2 and all(c[8] == "tbf" for c in alone)
    assert tc_commands(link(delay_ms=5), "delayline") == []  # the delay line does it all


def test_delay_line_rules_send_both_directions_of_the_link_to_its_queue() -> None:
    text = delayline_rules([(link(delay_ms=5), 100)])
    assert text.splitlines() == [
        "*mangle",
        "-A PREROUTING -i eth0 -j NFQUEUE --queue-num 100 --queue-bypass",
        "-A POSTROUTING -o eth0 -j NFQUEUE --queue-num 100 --queue-bypass",
        "COMMIT",
    ]


def test_an_interface_name_that_would_break_the_rules_text_is_refused() -> None:
    bad = ShapedLink("pod", "npl-x-h-node1", "eth0\n-F", "p", "eth0", LinkShape(delay_ms=1))
    with pytest.raises(UnsafeText):
        delayline_rules([(bad, 100)])
    with pytest.raises(UnsafeText):
        tc_commands(bad, "netem")


def test_queue_numbers_count_per_namespace_and_skip_bandwidth_only_links() -> None:
    a, b = link(delay_ms=1), ShapedLink("pod", "npl-x-h-node1", "caliabc", "p", "eth0", LinkShape(loss_pct=1))
    c = ShapedLink("other", "npl-x-h-node2", "eth0", "f", "port", LinkShape(delay_ms=1))
    plan = queue_plan([a, link(bandwidth_mbit=5), b, c])
    assert plan == {"npl-x-h-node1": [(a, 100), (b, 101)], "npl-x-h-node2": [(c, 100)]}


def test_nfqueue_verdict_and_bind_messages_have_the_kernels_layout() -> None:
    msg = nfqueue.verdict_message(queue=7, packet_id=0xABCDEF, verdict=nfqueue.NF_ACCEPT)
    length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", msg)
    assert (length, kind, flags) == (len(msg), (3 << 8) | 1, nfqueue.NLM_F_REQUEST)
    assert msg[16:20] == bytes([2, 0, 0, 7])  # AF_INET, version 0, queue 7 big-endian
    assert struct.unpack_from("=HH", msg, 20) == (12, nfqueue.NFQA_VERDICT_HDR)
    assert struct.unpack_from("!II", msg, 24) == (1, 0xABCDEF)
    bind = nfqueue.bind_messages(queue=7, maxlen=64)
    assert len(bind) == 3 and all(struct.unpack_from("=H", m, 6)[0] & nfqueue.NLM_F_ACK for m in bind)


def packet_message(packet_id: int) -> bytes:
    hdr = struct.pack("!IHB", packet_id, 0x0800, 3) + b"\0"
    attr = struct.pack("=HH", 4 + 7, nfqueue.NFQA_PACKET_HDR) + hdr
    body = bytes([2, 0, 0, 1]) + attr
    return struct.pack("=IHHII", 16 + len(body), (3 << 8), 0, 0, 0) + body


@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=8))
def test_parse_finds_every_packet_id_in_a_batch(ids: list[int]) -> None:
    data = b"".join(packet_message(i) for i in ids)
    assert [v for k, v in nfqueue.parse(data) if k == "packet"] == ids


def test_parse_reports_netlink_errors_but_not_acks() -> None:
    error = struct.pack("=IHHII", 36, nfqueue.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -1) + b"\0" * 16
    ack = struct.pack("=IHHII", 36, nfqueue.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", 0) + b"\0" * 16
    assert list(nfqueue.parse(error + ack)) == [("error", 1)]


@given(st.floats(0, 100), st.floats(0, 10), st.integers(0, 2**31))
def test_hold_times_stay_within_delay_plus_minus_jitter(delay: float, jitter: float, seed: int) -> None:
    config = QueueConfig("n", 100, delay_ms=delay, jitter_ms=jitter, loss_pct=0)
    hold = hold_seconds(config, random.Random(seed))
    assert hold is not None and max(0.0, delay - jitter) / 1000 - 1e-9 <= hold <= (delay + jitter) / 1000 + 1e-9


def test_loss_drops_about_its_share() -> None:
    config, rng = QueueConfig("n", 100, delay_ms=1, jitter_ms=0, loss_pct=30), random.Random(1)
    dropped = sum(hold_seconds(config, rng) is None for _ in range(10_000))
    assert 2800 < dropped < 3200


def lab_with(**extra: object) -> dict:  # type: ignore[type-arg]
    return {"name": "x", "hosts": 2, "externals": [{"name": "tasks"}], "pods": [{"name": "web"}], **extra}


def test_links_name_nodes_and_take_tclink_fields() -> None:
    spec = parse_lab(lab_with(links=[{"node": "node1", "delay": "20ms", "jitter": "2ms", "loss": 1, "bandwidth": 100},
                                     {"node": "tasks", "delay": 5}]), "f", Path("."))
    assert spec.model.links[0].shape() == LinkShape(20.0, 2.0, 1.0, 100.0)
    assert spec.model.links[1].shape() == LinkShape(delay_ms=5.0)


def test_link_mistakes_are_all_reported_with_object_and_field() -> None:
    data = lab_with(links=[{"node": "node9", "delay": "2ms"}, {"node": "node1", "delay": "1ms", "jitter": "5ms"},
                           {"node": "node1"}])
    data["pods"][0]["link"] = {"delay": "soon"}
    with pytest.raises(LabFileError) as info:
        parse_lab(data, "f.yaml", Path("."))
    problems = info.value.problems
    assert any(p.startswith("pod default/web: field link.delay:") and "'soon'" in p for p in problems)
    with pytest.raises(LabFileError) as info:
        parse_lab({**data, "pods": [{"name": "web"}]}, "f.yaml", Path("."))
    problems = info.value.problems
    assert "link node1: field node: the node's link is shaped twice" in problems
    assert any(p.startswith("link node9: field node: no node named 'node9'") for p in problems)
    assert any(p.startswith("link node1: field jitter:") for p in problems)
