"""The responder: one process answering for every pod, reloaded on SIGHUP, stopped only when ours."""

from __future__ import annotations

import http.client
import subprocess
import sys

import pytest
import topology_probes as probe
from topology_plans import make_plan

from topology import names, netns
from topology.model import plan_pod
from topology.responder import reload_responder, start_responder, stop_responder, write_responder_pods
from topology.responder_ctl import read_status, running_pid

pytestmark = pytest.mark.root


def test_reload_follows_pods_added_and_removed(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    web, api, db = plan.pods
    pid = start_responder(lab.paths, plan.pods)
    status = read_status(lab.paths)
    assert status is not None and status.pid == pid
    assert status.listening == 4 and status.skipped == ("prod/db 9/SCTP",) and status.failed == ()

    extra = plan_pod(lab.name, "dev", "extra", "h1", "10.210.0.3", [(7000, "TCP"), (7001, "UDP")])
    lab.engine.add_pods([extra])
    assert probe.tcp(web.netns, extra.ip, 7000) == "refused"  # plumbed, nobody listening yet
    assert start_responder(lab.paths, plan.pods + (extra,)) == pid  # running: a reload, same process
    assert probe.tcp(web.netns, extra.ip, 7000) == "accepted"
    assert probe.udp(web.netns, extra.ip, 7001) == "echoed"

    # Dropping api from the file closes its sockets (and so lets its namespace go once removed).
    assert probe.tcp(web.netns, api.ip, 8080) == "accepted"
    write_responder_pods(names.responder_pods_file(lab.paths), [web, db, extra])
    status = reload_responder(lab.paths)
    assert status.listening == 5
    assert probe.tcp(web.netns, api.ip, 8080) == "refused"


def test_http_gets_an_answer_naming_the_pod(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    web, api, _db = plan.pods
    start_responder(lab.paths, plan.pods)
    with netns.entered(web.netns):
        conn = http.client.HTTPConnection(str(api.ip), 8080, timeout=3)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            status, body = response.status, response.read()
        finally:
            conn.close()
    assert (status, body) == (200, b"dev/api\n")
    assert probe.tcp(web.netns, api.ip, 8080) == "accepted"  # other bytes are still echoed


def test_a_missing_namespace_is_reported_not_fatal(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    ghost = plan_pod(lab.name, "dev", "ghost", "h1", "10.210.0.9", [(80, "TCP")])
    start_responder(lab.paths, [plan.pods[0], ghost])
    status = read_status(lab.paths)
    assert status is not None and status.listening == 2
    assert len(status.failed) == 1 and ghost.netns in status.failed[0]
    assert probe.tcp(plan.nodes[0].netns, plan.pods[0].ip, 80) == "accepted"


def test_stop_only_kills_our_own_process(lab) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    # A pid file naming a process that is not our responder (a pid reused by someone else).
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file = names.responder_pid_file(lab.paths)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{stranger.pid}\n")
        assert running_pid(lab.paths) is None
        assert stop_responder(lab.paths) is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()

    pid = start_responder(lab.paths, plan.pods)
    assert stop_responder(lab.paths) is True
    assert not probe.alive(pid)
    assert probe.tcp(plan.nodes[0].netns, plan.pods[0].ip, 80) == "refused"
    # With no sockets left, removing pods really frees their namespaces.
    lab.engine.remove_pods(plan.pods)
    assert not any(netns.exists(p.netns) for p in plan.pods)


def test_a_pod_recreated_under_its_name_gets_fresh_sockets(lab) -> None:  # type: ignore[no-untyped-def]
    """Delete and re-add a pod without changing the pods file: a reload must notice the new namespace."""
    plan = make_plan(lab.name)
    lab.engine.build(plan)
    web, api, _ = plan.pods
    start_responder(lab.paths, plan.pods)
    before = netns.identity(api.netns)
    lab.engine.remove_pods([api])
    lab.engine.add_pods([api])
    assert netns.identity(api.netns) != before
    assert probe.tcp(web.netns, api.ip, 8080) == "refused"  # the old socket is in the old namespace
    status = reload_responder(lab.paths)
    assert status.listening == 4 and status.failed == ()
    assert probe.tcp(web.netns, api.ip, 8080) == "accepted"
