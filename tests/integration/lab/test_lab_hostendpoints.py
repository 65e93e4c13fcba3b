"""Host endpoints with real packets, on both dataplanes (nftables and the iptables baseline): SSH only from
one namespace, a deny-all host policy that keeps BGP Established (failsafe) and pods reachable unless
applyOnForward says otherwise, a doNotTrack allow that needs its reverse rule, a preDNAT deny, and the
external server as a standalone host. Every verdict is checked by the oracle and by probes; the policy
files are the node-firewall scenario's."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from bgp.status import sessions
from lab.apply import ApplyError, apply_files, apply_sources, delete_keys
from lab.cli import app, register_commands
from lab.fabric import Fabric
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from lab.scenario import POLICY_KINDS, Check, verify
from lab.targets import resolve_netns
from policy_dataplane.dataplane.nft.counters import read_counters
from tests.integration.lab.node_firewall import FILES, node_firewall_lab
from tests.integration.lab.reach import tcp_outcomes
from topology import names
from topology.netns import run_in as run_in_netns

pytestmark = pytest.mark.root
register_commands()
NODE1, NODE2, TASKS = "10.99.0.1", "10.99.0.2", "10.99.0.200"
DENY_ALL = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-all-hosts}
spec: {selector: has(role), types: [Ingress, Egress]}
"""
DENY_8888 = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: edge-8888}
spec:
  selector: role == 'node'
  preDNAT: true
  applyOnForward: true
  order: 10
  ingress: [{action: Deny, protocol: TCP, destination: {ports: [8888]}}]
"""
NO_FAILSAFE = """apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {failsafeInboundHostPorts: [], failsafeOutboundHostPorts: []}
"""


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def fw_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The node-firewall lab on one dataplane, in private state directories, always torn down."""
    with node_firewall_lab(f"ithep{request.param[:3]}", request.param, tmp_path_factory.mktemp(f"hep-{request.param}")) as lab:
        yield lab


def reset_and_apply(lab: str, *files: str, extra: str = "") -> None:
    runtime = LabRuntime.open(lab)
    try:
        keys = [key for key, _ in runtime.store.objects(kinds=POLICY_KINDS)]
        if keys:
            delete_keys(runtime, keys)
        apply_files(runtime, [FILES / f for f in files])
        if extra:
            apply_sources(runtime, [("test.yaml", extra)])
    finally:
        runtime.close()


def check(lab: str, *cases: tuple[str, str, int, str]) -> None:
    """Each (from, to, port, allow|deny) by the oracle and by two real probes; all must agree."""
    outcomes = verify(lab, [Check.model_validate({"from": s, "to": d, "port": p, "expect": e}) for s, d, p, e in cases])
    wrong = [(o.check.describe(), o.check.expect, o.oracle, o.measured) for o in outcomes if not o.ok]
    assert not wrong, wrong


def bgp_states(lab: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    runtime = LabRuntime.open(lab)
    try:
        plan = Fabric(runtime).speaker_plans()
        return {(s.speaker, s.peer): (s.state, s.since) for s in sessions(runtime.paths, plan)}
    finally:
        runtime.close()


def forget_connections(lab: str) -> None:
    """Flush conntrack in the nodes' namespaces (the lab's own): open BGP sessions are then judged packet by
    packet again, as after a restart, instead of passing as established flows."""
    for netns in (names.host_netns(lab, "node1"), names.host_netns(lab, "node2"), names.external_netns(lab, "tasks")):
        subprocess.run(["ip", "netns", "exec", netns, "conntrack", "-F"], capture_output=True, check=False)


def explain_files(*args: str) -> dict:  # type: ignore[type-arg]
    files = [a for f in ("1-host-endpoints.yaml", "2-ssh-from-dev.yaml") for a in ("-f", str(FILES / f))]
    result = CliRunner().invoke(app, ["explain", *args, "--json", *files], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_ssh_only_from_one_namespace(fw_lab: str) -> None:
    reset_and_apply(fw_lab, "1-host-endpoints.yaml", "2-ssh-from-dev.yaml")
    check(fw_lab, ("dev/client", "node1", 22, "allow"), ("prod/db", "node1", 22, "deny"),
          ("tasks", "node1", 22, "deny"), ("tasks", "node2", 22, "deny"), ("dev/web", "node2", 22, "allow"),
          ("node1", "node2", 179, "allow"), ("node1", "tasks", 443, "allow"))
    # the oracle from the files alone (`lab explain -f`): nodes are known by their host endpoints' IPs
    ssh = explain_files(NODE2, NODE1, "--port", "22")
    assert not ssh["allowed"] and ssh["host_endpoints"][-1]["endpoint"].startswith("hep node1-eth0")
    assert ssh["host_endpoints"][-1]["reason"] == "nothing_allowed"  # ssh-from-dev selects it: tier default
    bgp = explain_files(NODE2, NODE1, "--port", "179")
    assert bgp["allowed"] and [h["reason"] for h in bgp["host_endpoints"]] == ["failsafe", "failsafe"]


def test_deny_all_host_policy_keeps_bgp_and_pods_unless_apply_on_forward(fw_lab: str) -> None:
    reset_and_apply(fw_lab, "1-host-endpoints.yaml", extra=DENY_ALL)
    before = bgp_states(fw_lab)
    assert before and all(state == "established" for state, _ in before.values()), before
    check(fw_lab, ("tasks", "node1", 8080, "deny"), ("dev/client", "node1", 22, "allow"),  # 22: failsafe
          ("node2", "node1", 8080, "deny"), ("node1", "node2", 179, "allow"),
          ("tasks", "dev/web", 80, "allow"), ("dev/client", "dev/web", 80, "allow"), ("dev/web", "tasks", 443, "allow"))
    runtime = LabRuntime.open(fw_lab)
    try:
        apply_files(runtime, [FILES / "3-deny-forward.yaml"])
    finally:
        runtime.close()
    check(fw_lab, ("tasks", "dev/web", 80, "deny"), ("dev/client", "dev/web", 80, "deny"),
          ("dev/web", "tasks", 443, "deny"), ("dev/client", "prod/db", 5432, "allow"), ("node1", "dev/web", 80, "allow"))
    forget_connections(fw_lab)  # BGP's packets now meet the host policy again: the failsafe ports let them by
    time.sleep(7)  # over two hold times (3 s): a cut session would have dropped by now
    after = bgp_states(fw_lab)
    assert after == before, (before, after)  # still Established, and never re-established since


def test_do_not_track_allow_needs_its_reverse_rule(fw_lab: str) -> None:
    reset_and_apply(fw_lab, "1-host-endpoints.yaml", "5-untracked-in.yaml")
    check(fw_lab, ("dev/client", "node1", 8080, "deny"))
    runtime = LabRuntime.open(fw_lab)
    try:
        client = resolve_netns(runtime, "dev/client")
        assert tcp_outcomes(client, [(NODE1, 8080)], timeout=2) == {(NODE1, 8080): "no answer"}
        if runtime.spec.dataplane == "nftables":  # the way in was allowed (untracked); the answer was not
            counters = read_counters({"node1": names.host_netns(fw_lab, "node1")})
            hits = [r.packets for r in counters.rules if r.policy == "admin-untracked" and r.direction == "ingress"]
            assert hits and hits[0] > 0
        apply_files(runtime, [FILES / "6-untracked-both.yaml"])
        assert tcp_outcomes(client, [(NODE1, 8080)], timeout=3) == {(NODE1, 8080): "accepted"}
    finally:
        runtime.close()
    check(fw_lab, ("dev/client", "node1", 8080, "allow"), ("prod/db", "node1", 8080, "deny"),
          ("dev/client", "node1", 8081, "deny"))


def test_pre_dnat_deny_before_any_dnat(fw_lab: str) -> None:
    reset_and_apply(fw_lab, "1-host-endpoints.yaml", "2-ssh-from-dev.yaml", "4-pre-dnat.yaml")
    check(fw_lab, ("tasks", "dev/web", 80, "deny"), ("dev/client", "dev/web", 80, "allow"),
          ("tasks", "node1", 8080, "allow"), ("dev/client", "node1", 8080, "deny"))
    runtime = LabRuntime.open(fw_lab)
    try:
        node1 = names.host_netns(fw_lab, "node1")
        if runtime.spec.dataplane == "nftables":  # its chain hooks prerouting before dst-nat (-100)
            listing = json.loads(run_in_netns(node1, ["nft", "-j", "list", "chain", "inet", "npl", "pre-dnat"]))
            chain = next(e["chain"] for e in listing["nftables"] if "chain" in e)
            assert chain["hook"] == "prerouting" and chain["prio"] < -100
        # A DNAT of the test's own (Services are another issue's): node1:8888 -> dev/web:80. preDNAT policy sees
        # the port before the DNAT: its deny of 80 does not stop 8888, and a deny of 8888 does.
        web = next(p for p in pod_plans(runtime) if p.key == "dev/web")
        table = f"ip {names.PREFIX}_test_dnat"
        run_in_netns(node1, ["nft", "-f", "-"], stdin=(
            f"add table {table}\nadd chain {table} pre {{ type nat hook prerouting priority dstnat; policy accept; }}\n"
            f"add rule {table} pre tcp dport 8888 dnat to {web.ip}:80\n"))
        tasks = names.external_netns(fw_lab, "tasks")
        assert tcp_outcomes(tasks, [(NODE1, 8888), (str(web.ip), 80)], timeout=2) == {
            (NODE1, 8888): "accepted", (str(web.ip), 80): "no answer"}
        apply_sources(runtime, [("deny-8888.yaml", DENY_8888)])
        assert tcp_outcomes(tasks, [(NODE1, 8888)], timeout=2) == {(NODE1, 8888): "no answer"}
    finally:
        runtime.close()


def test_external_server_as_a_standalone_host(fw_lab: str) -> None:
    reset_and_apply(fw_lab, "1-host-endpoints.yaml", "2-ssh-from-dev.yaml", "7-external-server.yaml")
    check(fw_lab, ("dev/web", "tasks", 443, "allow"), ("dev/client", "tasks", 443, "deny"),
          ("node1", "tasks", 443, "deny"), ("tasks", "node2", 8080, "deny"), ("tasks", "node1", 179, "allow"))
    runtime = LabRuntime.open(fw_lab)
    try:
        if runtime.spec.dataplane == "nftables":  # drops name the host endpoint that denied
            from lab.stored_world import world_of

            dp = runtime.dataplane()
            with dp.drops(["tasks"], world_of(runtime)) as watcher:
                tcp_outcomes(names.external_netns(fw_lab, "tasks"), [(NODE2, 8080)], timeout=1)
                events = watcher.poll(2.0)
            dp.close()
            assert any(e.endpoint and e.endpoint.startswith("hep tasks-eth0") and e.dst_name == "node2"
                       for e in events), [e.describe() for e in events]
    finally:
        runtime.close()


def test_a_host_endpoint_on_an_unknown_node_is_refused_and_nothing_applied(fw_lab: str) -> None:
    bad = (FILES / "1-host-endpoints.yaml").read_text().replace("node: node2", "node: node9")
    runtime = LabRuntime.open(fw_lab)
    try:
        before = runtime.store.revision
        with pytest.raises(ApplyError) as err:
            apply_sources(runtime, [("heps.yaml", bad)])
        assert "HostEndpoint node2-eth0: spec.node: no host or external server 'node9'" in str(err.value)
        assert runtime.store.revision == before
    finally:
        runtime.close()


def test_without_failsafe_ports_a_deny_all_host_policy_cuts_bgp(fw_lab: str) -> None:
    """The control for the failsafe test: the same deny-all, failsafe ports removed, and BGP goes down."""
    reset_and_apply(fw_lab, "1-host-endpoints.yaml", extra=DENY_ALL + "---\n" + NO_FAILSAFE)
    forget_connections(fw_lab)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(state != "established" for state, _ in bgp_states(fw_lab).values()):
            break
        time.sleep(0.5)
    assert any(state != "established" for state, _ in bgp_states(fw_lab).values())
    check(fw_lab, ("node1", "node2", 179, "deny"))
