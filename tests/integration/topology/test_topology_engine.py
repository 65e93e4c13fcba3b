"""The netns engine for real: namespaces, veths, the fabric bridge, Calico pod plumbing, real TCP/UDP.

Cross-host and external reachability use static routes the TEST adds (in the real lab BGP installs them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import topology_probes as probe
from topology_plans import make_plan

from topology import names, netns, plumbing
from topology.engine import NetnsEngine, TopologyError
from topology.model import TopologyPlan, plan_pod
from topology.netns import CommandFailed
from topology.responder import start_responder
from topology.responder_ctl import running_pid
from topology.validation import PlanError

pytestmark = pytest.mark.root
BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")  # the root namespace's


def test_build_gives_calico_plumbing_and_real_reachability(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    seen: list[tuple[int, int, str]] = []
    machine_bridge_nf = BRIDGE_NF.read_text()
    lab.engine.build(plan, progress=lambda done, total, what: seen.append((done, total, what)))
    last = {what: (done, total) for done, total, what in seen}  # each phase ends complete
    assert last == {"creating fabric and nodes": (4, 4), "plumbing fabric and nodes": (4, 4),
                    "creating pod namespaces": (3, 3), "plumbing pods": (3, 3)}
    assert lab.engine.list_owned(lab.name) == sorted(
        [plan.fabric.netns] + [n.netns for n in plan.nodes] + [p.netns for p in plan.pods]
    )
    start_responder(lab.paths, plan.pods)
    web, api, db = plan.pods
    h1, h2, srv = plan.nodes

    # Pod side: eth0 with ip/32, 169.254.1.1 on-link, default via it.
    addrs = probe.ip_json(web.netns, "addr", "show", "dev", "eth0")[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"] == [("10.210.0.1", 32)]
    routes = {(r["dst"], r.get("gateway"), r.get("scope")) for r in probe.ip_json(web.netns, "route")}
    assert routes == {("default", "169.254.1.1", None), ("169.254.1.1", None, "link")}
    # Host side: cali… with ee:ee:…, proxy ARP at once, /32 route on it; hosts forward.
    link = probe.ip_json(h1.netns, "link", "show", "dev", web.host_ifname)[0]
    assert link["address"] == "ee:ee:ee:ee:ee:ee" and "UP" in link["flags"]
    assert probe.read_sysctl(h1.netns, f"net.ipv4.conf.{web.host_ifname}.proxy_arp") == "1"
    assert probe.read_sysctl(h1.netns, f"net.ipv4.neigh.{web.host_ifname}.proxy_delay") == "0"
    assert probe.read_sysctl(h1.netns, f"net.ipv4.conf.{web.host_ifname}.rp_filter") == "1"
    assert probe.read_sysctl(h1.netns, "net.ipv4.conf.eth0.send_redirects") == "0"
    assert probe.read_sysctl(h1.netns, "net.ipv4.ip_forward") == "1"
    assert not [a for a in addrs if a["family"] == "inet6"]  # addrgenmode none: no IPv6 chatter
    assert probe.read_sysctl(plan.fabric.netns, "net.ipv4.ip_forward") == "0"
    # br_netfilter is loaded on the machines the lab runs on (the test machine's kernel has it built in):
    # the fabric is a plain switch, bridged frames skip its netfilter hooks
    for family in ("iptables", "ip6tables", "arptables"):
        assert probe.read_sysctl(plan.fabric.netns, f"net.bridge.bridge-nf-call-{family}") == "0"
    assert BRIDGE_NF.read_text() == machine_bridge_nf  # the machine's own namespace keeps its setting
    assert probe.read_sysctl(web.netns, "net.ipv4.icmp_ratelimit") == "0"
    # Permanent neighbours both ways (ARP table limits at scale, see plumbing.py); the pod's MAC is known.
    assert probe.ip_json(web.netns, "link", "show", "dev", "eth0")[0]["address"] == web.mac
    pod_neigh = probe.ip_json(web.netns, "neigh", "show", "dev", "eth0")
    assert [(n["dst"], n["lladdr"], n["state"]) for n in pod_neigh] == [("169.254.1.1", "ee:ee:ee:ee:ee:ee", ["PERMANENT"])]
    host_neigh = probe.ip_json(h1.netns, "neigh", "show", "dev", web.host_ifname)
    assert [(n["dst"], n["lladdr"], n["state"]) for n in host_neigh] == [(str(web.ip), web.mac, ["PERMANENT"])]
    host_routes = {(r["dst"], r.get("dev")) for r in probe.ip_json(h1.netns, "route")}
    assert {("10.210.0.1", web.host_ifname), ("10.210.0.2", api.host_ifname)} <= host_routes
    assert ("default", "eth0") in host_routes

    # Same host: pod to pod through the host (declared port accepted and echoed; undeclared refused).
    assert probe.tcp(web.netns, api.ip, 8080) == "accepted"
    assert probe.tcp(api.netns, web.ip, 81) == "refused"
    assert probe.udp(api.netns, web.ip, 53) == "echoed"
    # Pod to its host and host to pod.
    assert probe.tcp(web.netns, h1.fabric_ip.ip, 9) == "refused"
    assert probe.tcp(h1.netns, web.ip, 80) == "accepted"

    # Cross-host: nothing until routes exist (the fabric does not route), then both ways.
    assert probe.tcp(web.netns, db.ip, 5432, timeout=0.5) == "silent"
    probe.add_route(h1.netns, f"{db.ip}/32", str(h2.fabric_ip.ip))
    probe.add_route(h2.netns, f"{web.ip}/32", str(h1.fabric_ip.ip))
    assert probe.tcp(web.netns, db.ip, 5432) == "accepted"
    assert probe.tcp(db.netns, web.ip, 80) == "accepted"
    assert probe.tcp(db.netns, web.ip, 1) == "refused"

    # External server: reaches a pod once it has a route to it; the pod reaches it back.
    assert probe.tcp(srv.netns, web.ip, 80, timeout=0.5) == "silent"
    probe.add_route(srv.netns, f"{web.ip}/32", str(h1.fabric_ip.ip))
    assert probe.tcp(srv.netns, web.ip, 80) == "accepted"
    assert probe.tcp(web.netns, srv.fabric_ip.ip, 443) == "refused"


def test_without_static_neighbours_proxy_arp_answers_for_the_gateway(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    NetnsEngine(static_neighbours=False).build(plan)
    start_responder(lab.paths, plan.pods)
    web, api, _ = plan.pods
    assert probe.ip_json(web.netns, "neigh", "show", "dev", "eth0") == []
    assert probe.tcp(web.netns, api.ip, 8080) == "accepted"
    learnt = probe.ip_json(web.netns, "neigh", "show", "dev", "eth0")
    assert [(n["dst"], n["lladdr"]) for n in learnt] == [("169.254.1.1", "ee:ee:ee:ee:ee:ee")]
    assert "PERMANENT" not in learnt[0]["state"]  # answered by the host's proxy ARP


def test_remove_pods_frees_interfaces_and_a_pod_can_come_back(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    web, api, _ = plan.pods
    h1 = plan.nodes[0]
    lab.engine.remove_pods([api])
    assert not netns.exists(api.netns)
    links = {link["ifname"] for link in probe.ip_json(h1.netns, "link")}
    assert api.host_ifname not in links and web.host_ifname in links
    assert "10.210.0.2" not in {r["dst"] for r in probe.ip_json(h1.netns, "route")}
    lab.engine.remove_pods([api])  # removing again is harmless

    lab.engine.add_pods([api])  # same names, straight away
    start_responder(lab.paths, [api])
    assert probe.tcp(web.netns, api.ip, 8080) == "accepted"
    with pytest.raises(PlanError, match="already exists"):
        lab.engine.add_pods([api])


def test_a_failed_build_leaves_nothing(lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    real = plumbing.pod_requests

    def fail_on_db(pod, static_neighbours=True):  # type: ignore[no-untyped-def]
        requests = real(pod, static_neighbours)
        if pod.name == "db":  # the last request twice: the kernel refuses it (EEXIST)
            requests.append(requests[-1])
        return requests

    monkeypatch.setattr(plumbing, "pod_requests", fail_on_db)
    with pytest.raises(Exception, match="File exists"):
        lab.engine.build(plan)
    assert lab.engine.list_owned(lab.name) == []


def test_a_failed_add_removes_only_its_own_pods(lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    before = lab.engine.list_owned(lab.name)
    new = [plan_pod(lab.name, "dev", f"new{i}", "h1", f"10.210.0.{10 + i}") for i in range(3)]
    real = plumbing.pod_requests

    def fail_on_new2(pod, static_neighbours=True):  # type: ignore[no-untyped-def]
        requests = real(pod, static_neighbours)
        return requests + requests[-1:] if pod.name == "new2" else requests

    monkeypatch.setattr(plumbing, "pod_requests", fail_on_new2)
    with pytest.raises(Exception, match="File exists"):
        lab.engine.add_pods(new)
    assert lab.engine.list_owned(lab.name) == before
    links = {link["ifname"] for link in probe.ip_json(plan.nodes[0].netns, "link")}
    assert not links & {p.host_ifname for p in new}
    assert probe.tcp(plan.pods[0].netns, plan.pods[1].ip, 8080) == "refused"  # the lab still works


def test_bad_plan_or_existing_lab_creates_nothing(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    web = plan.pods[0]
    bad = TopologyPlan(plan.lab, plan.fabric, plan.nodes, plan.pods + (web,))
    with pytest.raises(PlanError):
        lab.engine.build(bad)
    assert lab.engine.list_owned(lab.name) == []
    lab.engine.build(plan)
    with pytest.raises(TopologyError, match="already has namespaces"):
        lab.engine.build(plan)
    assert len(lab.engine.list_owned(lab.name)) == 7  # the running lab is left alone


def test_destroy_cleans_up_after_a_crashed_process(lab2) -> None:  # type: ignore[no-untyped-def]
    """A process builds a lab and dies without cleaning up; destroy(lab) needs nothing but the name."""
    script = textwrap.dedent(
        f"""
        import os
        from topology_plans import make_plan
        from topology.engine import NetnsEngine
        from topology.responder import start_responder
        from topology import names
        plan = make_plan({lab2.name!r})
        NetnsEngine().build(plan)
        start_responder(names.LabPaths.for_lab({lab2.name!r}), plan.pods)
        os._exit(3)
        """
    )
    env_path = __file__.rsplit("/", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r})\n" + script],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3, done.stderr
    assert len(lab2.engine.list_owned(lab2.name)) == 7
    responder = running_pid(lab2.paths)
    assert responder is not None
    removed = lab2.engine.destroy(lab2.name)
    assert running_pid(lab2.paths) is None and not probe.alive(responder)
    assert len(removed) == 7
    assert lab2.engine.list_owned(lab2.name) == []
    assert not [ns for ns in netns.list_netns() if ns.startswith(names.lab_netns_prefix("tt2"))]


def test_exec_in_runs_inside_the_namespace(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    out = lab.engine.exec_in(plan.pods[0].netns, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
    assert out.returncode == 0 and "10.210.0.1/32" in out.stdout
    with pytest.raises(TopologyError):
        lab.engine.exec_in(names.pod_netns("tt1", "nope", "nope"), ["true"])


def test_every_way_into_a_namespace_enters_that_one_and_only_there(lab) -> None:  # type: ignore[no-untyped-def]
    """run_in, start_in (setns before exec), call_in (this thread) and exec_in (`ip netns exec`) all land in
    the pod's namespace, and the calling thread is back home afterwards."""
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    target = plan.pods[0].netns
    inside = f"net:[{netns.identity(target)}]"
    home = os.readlink("/proc/thread-self/ns/net")
    assert home != inside
    readlink = ["readlink", "/proc/self/ns/net"]
    assert lab.engine.run_in(target, readlink).strip() == inside
    proc = lab.engine.start_in(target, readlink, stdout=subprocess.PIPE)
    assert proc.communicate()[0].strip() == inside
    assert lab.engine.call_in(target, lambda: os.readlink("/proc/thread-self/ns/net")) == inside
    assert lab.engine.exec_in(target, readlink).stdout.strip() == inside
    assert os.readlink("/proc/thread-self/ns/net") == home
    with pytest.raises(CommandFailed, match="false"):
        lab.engine.run_in(target, ["false"])
