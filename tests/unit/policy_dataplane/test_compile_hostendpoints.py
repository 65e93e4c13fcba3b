"""Host endpoints compiled into node programs and rendered for nftables and iptables (pure: no kernel)."""

from __future__ import annotations

from test_policy_hostendpoints import NODE_HEPS, gnp, world

from policy_dataplane.dataplane.compile import IncrementalCompiler, compile_host, compile_hosts
from policy_dataplane.dataplane.hostprogram import NO_NODE_POLICY
from policy_dataplane.dataplane.iptables.render import render_iptables_full
from policy_dataplane.dataplane.iptables.render_node import needs_full_restore
from policy_dataplane.dataplane.nft.render import element_changes, render_diff, render_full
from policy_dataplane.policy.documents import load_text

WEB = {("dev", "web"): "cali0123456789a"}
UNTRACKED = gnp("untracked", "  selector: role == 'node'\n  doNotTrack: true\n  applyOnForward: true\n"
                             "  types: [Ingress]\n  ingress:\n  - {action: Allow, protocol: TCP, destination: {ports: [8080]}}")
PRE_DNAT = gnp("edge", "  selector: role == 'node'\n  preDNAT: true\n  applyOnForward: true\n  ingress:\n"
                       "  - {action: Deny, protocol: TCP, destination: {ports: [80]}}")
FORWARD = gnp("fwd", "  selector: role == 'node'\n  applyOnForward: true\n  types: [Ingress]\n  ingress: [{action: Allow}]")


def test_a_node_without_host_endpoint_has_no_node_chains() -> None:
    program = compile_host(world(""), WEB, "node1")
    assert program.node == NO_NODE_POLICY
    text = render_full(program)
    assert "hi-eth0" not in text and 'oifname "cali*" jump to-wl' in text  # a host to its pods: their ingress


def test_a_host_endpoint_gets_failsafe_and_a_default_deny_at_its_end() -> None:
    program = compile_host(world(NODE_HEPS), WEB, "node1")
    hep = program.node.endpoint
    assert hep is not None and hep.key == "hep node1-eth0 (node1/eth0)" and not hep.ingress
    text = render_full(program)
    assert 'iifname "eth0" jump hi-eth0' in text and 'oifname "eth0" jump ho-eth0' in text
    assert "add rule inet npl hi-eth0 meta l4proto 6 th dport 179 counter accept" in text
    assert "add rule inet npl ho-eth0 meta l4proto 17 th dport 53 counter accept" in text
    assert 'log prefix "T hi-eth0 0" group 1 drop comment "tier (no profile) default deny"' in text
    assert "hfi-eth0" not in text  # no applyOnForward policy: forwarded traffic is not policed
    node2 = compile_host(world(NODE_HEPS), {}, "node2").node.endpoint
    assert node2 is not None and node2.key.startswith("hep node2-eth0")


def test_phases_render_in_their_own_hooks() -> None:
    program = compile_host(world(NODE_HEPS + UNTRACKED + PRE_DNAT + FORWARD), WEB, "node1")
    hep = program.node.endpoint
    assert hep is not None and hep.untracked_ingress and hep.pre_dnat_ingress and hep.forward_ingress
    assert not hep.forward_egress and hep.ingress  # fwd also applies to the host's own traffic
    text = render_full(program)
    assert "add chain inet npl raw-pre { type filter hook prerouting priority raw; policy accept; }" in text
    assert "add chain inet npl pre-dnat { type filter hook prerouting priority mangle; policy accept; }" in text
    assert 'iifname "eth0" fib daddr type local jump hui-eth0' in text
    assert "notrack accept" in text and "meta mark set meta mark or 0x40000 accept" in text
    assert 'iifname "eth0" meta mark and 0x40000 == 0 jump hfi-eth0' in text
    ipt = render_iptables_full(program)
    assert "*raw" in ipt and "*mangle" in ipt and "-j CT --notrack" in ipt
    assert "-A npl-PREROUTING -i eth0 -m addrtype --dst-type LOCAL -j npl-hui-eth0" in ipt
    raw = ipt.split("*raw")[1].split("COMMIT")[0]
    assert ":npl-pi-" in raw  # the untracked policy's chain, copied into the raw table


def test_changing_the_node_program_rewrites_base_chains_and_drops_old_chains() -> None:
    before = compile_host(world(NODE_HEPS + UNTRACKED), WEB, "node1")
    after = compile_host(world(NODE_HEPS), WEB, "node1")
    assert element_changes(before, after) is None and needs_full_restore(before, after)
    diff = render_diff(before, after)
    assert "flush chain inet npl hui-eth0" in diff and "raw-pre" not in diff  # base rules unchanged
    assert diff.index("flush chain inet npl hui-eth0") < diff.index("delete chain inet npl pi-")
    gone = compile_host(world(""), WEB, "node1")
    diff = render_diff(after, gone)
    assert "delete chain inet npl hi-eth0" in diff
    assert diff.index("flush chain inet npl input") < diff.index("delete chain inet npl hi-eth0")


def test_incremental_compile_follows_host_endpoint_changes() -> None:
    placement = {"node1": WEB, "node2": {}}
    compiler = IncrementalCompiler()
    w = world(NODE_HEPS)
    assert compiler.compile(w, placement) == compile_hosts(w, placement)
    relabelled = load_text(NODE_HEPS.replace("{role: node}", "{role: other}", 1) + FORWARD, "t.yaml")
    w.apply(relabelled)
    assert compiler.compile(w, placement) == compile_hosts(w, placement)
    assert compiler.programs["node1"].node.endpoint.forward_ingress == ()  # type: ignore[union-attr]
    assert compiler.programs["node2"].node.endpoint.forward_ingress != ()  # type: ignore[union-attr]


def test_policy_changes_selecting_host_endpoints_patch_the_node_program() -> None:
    """Policies that select a node's host endpoint reach its node program through the incremental path
    (policy changes only), in every phase, added, edited and removed."""
    placement = {"node1": WEB, "node2": {}}
    compiler = IncrementalCompiler()
    w = world(NODE_HEPS)
    compiler.compile(w, placement)
    for text in (FORWARD, UNTRACKED, PRE_DNAT, FORWARD.replace("Allow", "Deny")):
        w.apply(load_text(text, "t.yaml"))
        assert compiler.compile(w, placement) == compile_hosts(w, placement)
    assert compiler.programs["node1"].node.endpoint.forward_ingress != ()  # type: ignore[union-attr]
    w.delete([p for p in w.policies.values() if p.name in {"fwd", "edge"}])
    assert compiler.compile(w, placement) == compile_hosts(w, placement)
    assert compiler.programs["node1"].node.endpoint.forward_ingress == ()  # type: ignore[union-attr]


def test_hooks_a_host_endpoint_needs_exist_only_while_it_does() -> None:
    """Empty hooked chains would cost every packet a traversal: raw-pre, raw-out and pre-dnat come and go
    with the host endpoint, and go before the chains they jump to."""
    plain = compile_host(world(""), WEB, "node1")
    guarded = compile_host(world(NODE_HEPS + UNTRACKED + PRE_DNAT), WEB, "node1")
    hooks = ("raw-pre", "raw-out", "pre-dnat")
    assert not [c for c in hooks if f"add chain inet npl {c} " in render_full(plain)]
    assert all(f"add chain inet npl {c} {{ type filter hook" in render_full(guarded) for c in hooks)
    diff = render_diff(plain, guarded)
    assert all(f"add chain inet npl {c} {{ type filter hook" in diff for c in hooks)
    assert diff.index("add chain inet npl hui-eth0") < diff.index("add chain inet npl raw-pre")
    diff = render_diff(guarded, plain)
    assert all(f"delete chain inet npl {c}\n" in diff + "\n" for c in hooks)
    assert diff.index("delete chain inet npl raw-pre") < diff.index("delete chain inet npl hui-eth0")
