"""Issue #8 on real labs: injection repros through `lab up`, hostile files through the CLI (nothing created),
iptables and /0, a programming failure rolled back, namespace deletion, ICMP matrices, and containment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from lab import warm
from lab.addresses import ipam_of
from lab.apply import ApplyError, apply_sources, delete_keys, key_for
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from lab.store import ObjectKey
from lab.traffic_hooks import expected_verdicts, probe_endpoints
from tests.integration.lab.test_lab_policy import small_lab
from tests.unit.hardening.test_hostile_inputs import LAB
from topology import names
from traffic.measure import measure_matrix
from traffic.model import Protocol
from traffic.probes import ProbeEngine

pytestmark = pytest.mark.root
ROOT = Path(__file__).parents[3]


def netns_names() -> set[str]:
    """Namespaces this test run could have made (ours by prefix, and the repro's `other`): other helpers'
    labs on this machine come and go meanwhile."""
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    return {n for entry in json.loads(out or "[]") if (n := entry["name"]).startswith(f"{names.PREFIX}-")
            or n == "other" or not n.split("-")[0].isalpha()}


def lab_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=cwd, env=dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="500"),
                          capture_output=True, text=True, timeout=300)


def nothing_created(lab_dirs: Path, before: set[str]) -> None:
    assert netns_names() - before == set()
    for root in (lab_dirs / "state", lab_dirs / "run"):
        assert not root.exists() or not any(root.iterdir()), list(root.iterdir())
    assert not list(lab_dirs.rglob("PWNED")) and not Path("PWNED").exists()


# 1. injection through `lab up -f` ---------------------------------------------------------------------------
@pytest.mark.parametrize("namespace", ["dev\nnetns exec {prefix}-hx-h-node1 touch PWNED", "dev\nnetns add other"])
def test_injection_lab_files_run_nothing_and_create_nothing(lab_dirs: Path, namespace: str) -> None:
    namespace = namespace.format(prefix=names.PREFIX)
    (lab_dirs / "evil.yaml").write_text(yaml.safe_dump({
        "name": "hx", "hosts": 1, "namespaces": [{"name": namespace}], "pods": [{"name": "a", "namespace": namespace}]}))
    before = netns_names()
    done = lab_cli(lab_dirs, "up", "-q", "-f", "evil.yaml")
    assert done.returncode == 1 and "must be a DNS label" in done.stderr and "Traceback" not in done.stderr
    assert "other" not in netns_names()
    nothing_created(lab_dirs, before)


@pytest.mark.parametrize("args, expected", [
    (["up", "-f", "/dev/zero"], "not a regular file"),
    (["up", "-f", "bomb.yaml"], "expands to more than"),
    (["up", "-f", "binary.yaml"], "not UTF-8 text"),
    (["up", "-f", "empty.yaml"], "the file is empty"),
    (["up", "-f", "outside.yaml"], "outside the lab file's folder"),
    (["status", "--lab", "../../etc"], "lab name '../../etc'"),
    (["down", "x;y"], "lab name 'x;y'"),
    (["probe", "a/b", "c/d", "--port", "99999"], "65535"),
    (["matrix", "--port", "0"], "Invalid value for '--port': 0 is not in the range 1<=x<=65535"),
    (["matrix", "--sample", "-1"], "Invalid value for '--sample': -1 is not in the range x>=0"),
])
def test_bad_input_through_the_cli_is_a_clean_error(lab_dirs: Path, args: list[str], expected: str) -> None:
    from tests.unit.hardening.test_lab_inputs import BOMB

    (lab_dirs / "bomb.yaml").write_text(BOMB)
    (lab_dirs / "binary.yaml").write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 10)
    (lab_dirs / "empty.yaml").write_text("")
    (lab_dirs / "outside.yaml").write_text("name: hx\nhosts: 1\napply: [../../etc/shadow]\n")
    before = netns_names()
    done = lab_cli(lab_dirs, *args)
    assert done.returncode in (1, 2) and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    nothing_created(lab_dirs, before)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=LAB)
def test_hostile_lab_files_through_lab_up(tmp_path_factory: pytest.TempPathFactory, data: dict) -> None:
    """A few generated hostile files through the real `lab up`: a clean error (nothing created) or a lab."""
    work = tmp_path_factory.mktemp("hostile")
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{names.STATE_ROOT_ENV: str(work / "state"),
                                                   names.RUN_ROOT_ENV: str(work / "run")},
               NETPOL_LAB_LIMITS="hosts=3,pods=8,externals=2")  # a generated lab that is valid stays small
    (work / "lab.yaml").write_text(yaml.safe_dump({**data, "name": "hy"}, allow_unicode=True))
    before = netns_names()
    try:
        done = subprocess.run([sys.executable, "-m", "lab", "up", "-q", "--no-wait", "-f", "lab.yaml"], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in done.stderr
        if done.returncode != 0:
            assert done.stderr.startswith("error:"), done.stderr
            nothing_created(work, before)
    finally:
        subprocess.run([sys.executable, "-m", "lab", "down", "hy", "--force"], cwd=work, env=env,
                       capture_output=True, timeout=300)
    assert not {n for n in netns_names() - before if n.startswith(names.lab_netns_prefix("hy"))}


# 7. iptables: /0, all or nothing ------------------------------------------------------------------------------
ANYWHERE = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-anywhere, namespace: dev}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0, except: [%s/32]}}]}]
"""
UNRELATED = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: unrelated}
spec: {selector: app == 'none', ingress: [{action: Deny}]}
"""


def matrix_mismatches(lab: str, protocol: Protocol, port: int) -> list[object]:
    endpoints = probe_endpoints(lab)
    with ProbeEngine() as engine:
        report = measure_matrix(engine, endpoints, lambda pairs, proto, p: expected_verdicts(lab, pairs, proto, p),
                                protocol, port, full=True)
    return [r for r in report.records if r.expected != r.measured]


def test_iptables_programs_slash_zero_and_rolls_back_what_it_cannot_program(make_lab, monkeypatch) -> None:
    # No controller: this checks the command's own rollback when it programs the filters itself (with a
    # controller running, the controller is the filters' writer).
    make_lab({**small_lab("ith"), "dataplane": "iptables", "hosts": 2}, controller=False)
    runtime = LabRuntime.open("ith")
    try:
        web0 = next(p for p in pod_plans(runtime) if p.key == "dev/web-0")
        apply_sources(runtime, [("anywhere.yaml", ANYWHERE % web0.ip)])
        assert matrix_mismatches("ith", Protocol.TCP, 80) == []  # /0 as two /1s, the except still denies
        kept = runtime.store.revision

        def host_refuses(*args: object) -> None:
            raise RuntimeError("iptables-restore: line 3 failed")

        with monkeypatch.context() as patch, pytest.raises(ApplyError, match="the store was rolled back"):
            patch.setattr(warm, "sync", host_refuses)  # the first sync fails; the roll-back's too
            apply_sources(runtime, [("unrelated.yaml", UNRELATED)])
        assert runtime.store.get_object(ObjectKey("GlobalNetworkPolicy", "", "unrelated")) is None
        assert runtime.store.revision > kept  # the roll-back is a change of its own
        apply_sources(runtime, [("unrelated.yaml", UNRELATED)])  # later changes still work
        assert matrix_mismatches("ith", Protocol.TCP, 80) == []
    finally:
        runtime.close()


OFFICE = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: office}
spec:
  selector: all()
  ingress: [{action: Allow, source: {nets: [10.77.0.0/16]}}, {action: Allow, source: {selector: all()}}]
"""


def kernel_filters(netns: str) -> tuple[str, list[str]]:
    """What a host's kernel holds: its iptables rules (without the dump's date lines and the built-in chains'
    counters, which a full restore resets) and its ipsets."""
    saved = subprocess.run(["ip", "netns", "exec", netns, "iptables-legacy-save"], capture_output=True, text=True,
                           check=True).stdout
    sets = subprocess.run(["ip", "netns", "exec", netns, "ipset", "list", "-n"], capture_output=True, text=True,
                          check=True).stdout
    rules = [re.sub(r"\[\d+:\d+\]$", "[0:0]", line) for line in saved.splitlines() if not line.startswith("#")]
    return "\n".join(rules), sorted(sets.split())


def test_a_program_the_kernel_refuses_rolls_back_store_and_kernel(make_lab) -> None:
    """The kernel itself refuses node1's program: a set of another type holds the name the new policy's set
    needs (ipset's kernel module answers "set with the same name already exists"). node2 took the change
    meanwhile (hosts are programmed at once). The apply must leave the store and both kernels as before."""
    from policy_dataplane.dataplane.iptables.render import ipset_name
    from policy_dataplane.dataplane.preflight import policy_program
    from policy_dataplane.policy.documents import load_text

    make_lab({**small_lab("irf"), "dataplane": "iptables", "hosts": 2}, controller=False)
    hosts = [names.host_netns("irf", h) for h in ("node1", "node2")]
    [office] = load_text(OFFICE)
    [nets_set] = [ipset_name(n) for n in policy_program(office).address_sets if n.startswith("n-")]  # type: ignore[arg-type]
    with LabRuntime.open("irf") as runtime:
        objects, placements = runtime.store.objects(), runtime.store.placements()
        before = {netns: kernel_filters(netns) for netns in hosts}
        subprocess.run(["ip", "netns", "exec", hosts[0], "ipset", "create", nets_set, "hash:ip"], check=True)
        with pytest.raises(ApplyError, match="already exists.*the store was rolled back") as refused:
            apply_sources(runtime, [("office.yaml", OFFICE)])
        assert "could not be brought back" not in str(refused.value)
        assert runtime.store.objects() == objects and runtime.store.placements() == placements
    after = {netns: kernel_filters(netns) for netns in hosts}
    assert after[hosts[1]] == before[hosts[1]]  # node2 had taken the change: it is undone
    assert after[hosts[0]][0] == before[hosts[0]][0]  # node1's rules never changed
    assert matrix_mismatches("irf", Protocol.TCP, 80) == []  # packets agree with the restored store


# 8. semantics -------------------------------------------------------------------------------------------------
ICMP_ECHO_ONLY = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: echo-only}
spec:
  selector: all()
  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 8}}, {action: Allow, protocol: TCP}]
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: office, namespace: dev}
spec: {nets: [10.1.0.0/16]}
"""


def test_namespace_deletion_takes_its_contents_and_icmp_matrices_use_the_echo_type(make_lab, lab_dirs) -> None:
    make_lab(small_lab("itn"), controller=False)  # no controller: it would recreate the deleted namespace
    runtime = LabRuntime.open("itn")
    try:
        apply_sources(runtime, [("echo.yaml", ICMP_ECHO_ONLY)])
        assert matrix_mismatches("itn", Protocol.ICMP, 0) == []  # the 54 false mismatches
        dev = [p for p in pod_plans(runtime) if p.namespace == "dev"]
        apply_sources(runtime, [("pol.yaml", ANYWHERE % dev[0].ip)])
        report = delete_keys(runtime, [key_for("namespace", "dev")])
        assert "Pod dev/db" in report.deleted and "NetworkSet dev/office" in report.deleted
        assert "NetworkPolicy dev/from-anywhere" in report.deleted
        assert not [k for k in runtime.store.object_keys() if k.namespace == "dev"]
        assert not {p.netns for p in dev} & netns_names()
        assert all(ipam_of(runtime).allocation(f"dev/{p.name}") is None for p in dev)
        assert matrix_mismatches("itn", Protocol.TCP, 80) == []
        # a pod namespace deleted behind the lab's back: `lab matrix` says so instead of a traceback
        gone = next(p for p in pod_plans(runtime) if p.namespace == "prod")
        subprocess.run(["ip", "netns", "del", gone.netns], check=True)
        done = lab_cli(Path.cwd(), "matrix", "--lab", "itn", "-o", str(lab_dirs / "m"))
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert f"the network namespace of {gone.key} is gone" in done.stderr, done.stderr
    finally:
        runtime.close()


# containment --------------------------------------------------------------------------------------------------
SNAPSHOT = r"""
set -e
ip link set lo up
snap() {
  ip -j link show | python3 -c 'import json,sys; print(sorted(l["ifname"] for l in json.load(sys.stdin)))'
  ip -j addr show | python3 -c 'import json,sys; print(sorted((l["ifname"], a["local"]) for l in json.load(sys.stdin) for a in l.get("addr_info", [])))'
  ip -j route show table all | python3 -c 'import json,sys; print(sorted(str(sorted(r.items())) for r in json.load(sys.stdin)))'
  nft list tables
  ss -Hlntu | awk '{print $1, $5}' | sort
}
snap > "$1/before"
"$2" -m lab up -q -f "$1/lab.yaml"
snap > "$1/up"
"$2" -m lab down hc
snap > "$1/after"
"""


def root_namespace_items() -> set[str]:
    items = set()
    for argv in (["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route", "show", "table", "all"],
                 ["nft", "list", "tables"], ["ss", "-Hlntup"]):
        items |= {" ".join(line.split()[1:]) for line in subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()}
    return items


def test_a_full_up_down_cycle_leaves_the_calling_namespace_untouched(lab_dirs: Path) -> None:
    """The lab runs from a namespace of its own (unshare -n) that stands for the root namespace: anything a
    stage did without entering a lab namespace would land there. Compared exactly before, while up and after.
    The real root namespace is checked too, for anything carrying the lab's name or addresses."""
    (lab_dirs / "lab.yaml").write_text(yaml.safe_dump({**small_lab("hc"), "hosts": 2, "bgp": {"layout": "route-reflector"}}))
    (lab_dirs / "snap.sh").write_text(SNAPSHOT)
    root_before = root_namespace_items()
    done = subprocess.run(["unshare", "-n", "bash", str(lab_dirs / "snap.sh"), str(lab_dirs), sys.executable],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    try:
        assert done.returncode == 0, done.stderr
        before, up, after = ((lab_dirs / f).read_text() for f in ("before", "up", "after"))
        assert up == before and after == before
        assert "lo" in before
        new_in_root = root_namespace_items() - root_before
        lab_marks = (names.lab_netns_prefix("hc"), "10.99.0.", "192.168.")
        assert not [i for i in new_in_root if any(m in i for m in lab_marks)]
    finally:
        subprocess.run([sys.executable, "-m", "lab", "down", "hc", "--force"], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, timeout=300)
