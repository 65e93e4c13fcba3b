"""Issue #8, item 1, second layer: no text reaching a kernel script or a daemon's configuration can carry a
newline, a quote or a separator (topology.kernel_text, used by every writer)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgp.bird import render_bird_config
from bgp.sessions import PeerPlan, ReflectorPlan
from policy_dataplane.dataplane.hostprogram import (
    Dir,
    EndpointProgram,
    HostProgram,
    PolicyProgram,
    RuleProgram,
    Verdict,
)
from policy_dataplane.dataplane.iptables.render import render_iptables_full
from policy_dataplane.dataplane.nft.render import render_full
from topology import batch
from topology.kernel_text import UnsafeText, batch_lines, quoted, token
from topology.model import plan_pod
from topology.netns import run_ip_batch

HOSTILE = ["dev\nnetns add other", 'a"b', "a b", "a;b", "a#b", "x\\y", "a\rb", "a\0b", "", "{a}"]


@pytest.mark.parametrize("text", HOSTILE)
def test_tokens_refuse_anything_that_could_end_a_command(text: str) -> None:
    with pytest.raises(UnsafeText):
        token(text)


@pytest.mark.parametrize("text", [t for t in HOSTILE if t not in ("a b", "a;b", "a#b", "", "{a}")])
def test_quoted_text_refuses_quotes_backslashes_and_control_characters(text: str) -> None:
    with pytest.raises(UnsafeText):
        quoted(text)


@given(st.text())
def test_whatever_passes_is_one_word_or_one_string(text: str) -> None:
    try:
        assert len(token(text).split()) == 1 and "\n" not in text
    except UnsafeText:
        pass
    try:
        inner = quoted(text)[1:-1]
        assert '"' not in inner and "\n" not in inner and "\\" not in inner
    except UnsafeText:
        pass


def test_ip_batch_refuses_a_line_with_a_line_break_before_running_anything() -> None:
    with pytest.raises(UnsafeText):
        run_ip_batch(["netns add nlb-ok", "netns add a\nnetns add other"])  # raises before `ip` starts
    assert batch_lines(["a", "b"]) == ["a", "b"]


def test_pod_veth_lines_refuse_a_hostile_namespace_even_past_validation() -> None:
    pod = plan_pod("lab", "dev\nnetns exec x touch PWNED", "web", "h1", IPv4Address("10.0.0.5"), ())
    with pytest.raises(UnsafeText):
        batch.pod_lines([pod])


def test_nft_and_iptables_comments_refuse_quotes() -> None:
    policy = PolicyProgram('x" ; flush ruleset ; "', Dir.INGRESS, (RuleProgram(Verdict.ALLOW),))
    endpoint = EndpointProgram("dev/web", "cali0", ingress=())
    program = HostProgram({}, {}, {policy.chain: policy}, {"cali0": endpoint})
    with pytest.raises(UnsafeText):
        render_full(program)
    with pytest.raises(UnsafeText):
        render_iptables_full(program)


def test_bird_descriptions_refuse_quotes() -> None:
    plan = ReflectorPlan("rr1", "netns", IPv4Address("10.99.0.250"), IPv4Address("10.99.0.250"), 64512, 9,
                         IPv4Address("10.99.0.250"), (PeerPlan('h1";}', IPv4Address("10.99.0.1"), True),))
    with pytest.raises(UnsafeText):
        render_bird_config(plan)

