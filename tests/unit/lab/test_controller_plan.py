"""The controller's loop body, without root: observed states in, repairs out."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from lab.controller.plan import HELPER_GRACE, plan
from lab.controller.state import (
    Announce,
    Desired,
    FilterRecord,
    HostSeen,
    Observed,
    PodWant,
    ProcessRecord,
    ProcessSeen,
    ProcessWant,
    RecreatePods,
    ReloadResponder,
    RemoveStrayPods,
    ReprogramHost,
    RestartProcess,
    SyncPolicy,
    SyncServices,
    backoff,
    record_restart,
)

PODS = {
    "dev/web": PodWant("dev/web", "h1", "x-p-dev.web", "x-h-h1", "cali0000000001", "10.0.0.1"),
    "dev/db": PodWant("dev/db", "h2", "x-p-dev.db", "x-h-h2", "cali0000000002", "10.0.0.65"),
}
PROCESSES = (
    ProcessWant("speaker h1", "speaker", "h1", "x-h-h1"),
    ProcessWant("speaker h2", "speaker", "h2", "x-h-h2"),
    ProcessWant("reflector rr1", "reflector", "rr1", "x-rr1"),
    ProcessWant("responder", "responder", "", ""),
)
DESIRED = Desired(
    revision=7, hosts=("h1", "h2"), pods=PODS, processes=PROCESSES,
    announcements={"h1": ("10.0.0.0/26",), "h2": ("10.0.0.64/26",)},
    responder_targets=frozenset({"x-p-dev.web", "x-p-dev.db"}),
)


def healthy() -> Observed:
    """Everything as the store wants it."""
    hosts = {
        "h1": HostSeen(True, "12", frozenset({"cali0000000001"}), frozenset({"10.0.0.1/32"})),
        "h2": HostSeen(True, "30", frozenset({"cali0000000002"}), frozenset({"10.0.0.65/32"})),
    }
    processes = {p.name: ProcessSeen(100 + i) for i, p in enumerate(PROCESSES)}
    return Observed(
        now=1000.0, pod_netns=frozenset({"x-p-dev.web", "x-p-dev.db"}), hosts=hosts, processes=processes,
        announcements=dict(DESIRED.announcements), responder_targets=DESIRED.responder_targets,
        table={}, filters={"h1": FilterRecord("12", 7), "h2": FilterRecord("30", 7)}, programmed_revision=7,
    )


def test_nothing_to_do_when_everything_matches():
    assert plan(DESIRED, healthy()) == []


def test_a_missing_pod_namespace_is_made_again():
    observed = replace(healthy(), pod_netns=frozenset({"x-p-dev.db"}))
    (action,) = plan(DESIRED, observed)
    assert isinstance(action, RecreatePods) and action.keys == ("dev/web",)
    assert "namespace x-p-dev.web missing" in action.reason


def test_a_pod_without_its_host_interface_or_route_is_made_again():
    observed = healthy()
    hosts = dict(observed.hosts)
    hosts["h2"] = replace(hosts["h2"], pod_routes=frozenset())  # plumbing cut off halfway
    hosts["h1"] = replace(hosts["h1"], pod_links=frozenset())
    (action,) = plan(DESIRED, replace(observed, hosts=hosts))
    assert isinstance(action, RecreatePods) and action.keys == ("dev/db", "dev/web")
    assert "route 10.0.0.65/32 on h2 missing" in action.reason


def test_a_pod_namespace_the_store_does_not_know_is_removed():
    observed = replace(healthy(), pod_netns=frozenset({"x-p-dev.web", "x-p-dev.db", "x-p-dev.old"}))
    (action,) = plan(DESIRED, observed)
    assert isinstance(action, RemoveStrayPods) and action.netns == ("x-p-dev.old",)


def test_a_dead_process_is_restarted():
    observed = healthy()
    processes = {**observed.processes, "speaker h2": ProcessSeen(None), "responder": ProcessSeen(None)}
    actions = plan(DESIRED, replace(observed, processes=processes))
    assert [a.name for a in actions if isinstance(a, RestartProcess)] == ["speaker h2", "responder"]


def test_a_restart_waits_for_its_backoff():
    record = ProcessRecord("reflector rr1", "reflector", "rr1", "x-rr1", next_attempt=1005.0)
    observed = replace(healthy(), processes={**healthy().processes, "reflector rr1": ProcessSeen(None)},
                       table={"reflector rr1": record})
    assert plan(DESIRED, observed) == []
    assert isinstance(plan(DESIRED, replace(observed, now=1005.0))[0], RestartProcess)


def test_a_missing_route_agent_restarts_its_speaker_only_after_the_grace():
    record = ProcessRecord("speaker h1", "speaker", "h1", "x-h-h1", helper_dead_since=999.0)
    processes = {**healthy().processes, "speaker h1": ProcessSeen(100, helper_alive=False)}
    observed = replace(healthy(), processes=processes, table={"speaker h1": record})
    assert plan(DESIRED, observed) == []  # ExaBGP respawns its agent: give it time
    later = replace(observed, now=999.0 + HELPER_GRACE)
    (action,) = plan(DESIRED, later)
    assert isinstance(action, RestartProcess) and "route agent" in action.reason


def test_filter_drift_by_generation_reprograms_only_that_host():
    observed = healthy()
    hosts = {**observed.hosts, "h2": replace(observed.hosts["h2"], fingerprint="31")}  # `nft flush ruleset`
    (action,) = plan(DESIRED, replace(observed, hosts=hosts))
    assert action == ReprogramHost(action.reason, "h2") and action.drift
    assert "generation 31" in action.reason


def test_unknown_filters_at_start_are_replaced_and_the_store_followed():
    observed = replace(healthy(), filters={}, programmed_revision=-1)
    actions = plan(DESIRED, observed)
    assert [type(a) for a in actions] == [ReprogramHost, ReprogramHost, SyncPolicy]
    assert not any(a.drift for a in actions if isinstance(a, ReprogramHost))


def test_a_newer_store_revision_syncs_the_filters_after_any_replacement():
    observed = healthy()
    hosts = {**observed.hosts, "h1": replace(observed.hosts["h1"], fingerprint="99")}
    actions = plan(replace(DESIRED, revision=9), replace(observed, hosts=hosts))
    assert [type(a) for a in actions] == [ReprogramHost, SyncPolicy]


def test_announcements_and_responder_follow_the_store():
    observed = replace(healthy(), announcements={"h1": ()}, responder_targets=frozenset({"x-p-dev.web"}))
    actions = plan(DESIRED, observed)
    assert [type(a) for a in actions] == [Announce, Announce, ReloadResponder]
    assert {a.node for a in actions if isinstance(a, Announce)} == {"h1", "h2"}


def test_a_dead_responder_is_restarted_not_reloaded():
    observed = replace(healthy(), responder_targets=None,
                       processes={**healthy().processes, "responder": ProcessSeen(None)})
    actions = plan(DESIRED, observed)
    assert [type(a) for a in actions] == [RestartProcess]


def test_a_missing_host_is_not_blamed_on_its_pods():
    hosts = {**healthy().hosts, "h2": HostSeen(False, None)}
    observed = replace(healthy(), hosts=hosts, pod_netns=frozenset({"x-p-dev.web"}))
    assert plan(DESIRED, observed) == []


def test_backoff_doubles_up_to_a_limit():
    assert [backoff(n) for n in range(5)] == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert backoff(50) == 30.0


def test_quick_deaths_in_a_row_back_off_and_a_stable_run_starts_again():
    record = ProcessRecord("speaker h1", "speaker", "h1", "x-h-h1")
    record_restart(record, 200, now=100.0, last_exit="pid 100 killed by signal 9")
    assert (record.restarts, record.failures_in_a_row, record.next_attempt) == (1, 0, 100.0)
    record_restart(record, 201, now=101.0, last_exit="pid 200 killed by signal 9")  # died within a second
    assert record.failures_in_a_row == 1 and record.next_attempt == 101.5
    record_restart(record, 202, now=200.0, last_exit="pid 201 exited with 1")  # ran for 99 s
    assert record.failures_in_a_row == 0 and record.restarts == 3 and record.pid == 202


@given(st.sets(st.sampled_from(["x-p-dev.web", "x-p-dev.db", "x-p-a", "x-p-b"])),
       st.sampled_from([None, "12", "13"]), st.booleans())
def test_plan_repairs_exactly_what_differs(pod_netns, h1_generation, speaker_up):
    observed = healthy()
    hosts = {**observed.hosts, "h1": replace(observed.hosts["h1"], fingerprint=h1_generation)}
    processes = {**observed.processes, "speaker h1": ProcessSeen(100 if speaker_up else None)}
    actions = plan(DESIRED, replace(observed, pod_netns=frozenset(pod_netns), hosts=hosts, processes=processes))
    recreated = {k for a in actions if isinstance(a, RecreatePods) for k in a.keys}
    removed = {n for a in actions if isinstance(a, RemoveStrayPods) for n in a.netns}
    assert recreated == {k for k, p in PODS.items() if p.netns not in pod_netns}
    assert removed == pod_netns - {"x-p-dev.web", "x-p-dev.db"}
    assert any(isinstance(a, ReprogramHost) for a in actions) == (h1_generation != "12")
    assert any(isinstance(a, RestartProcess) for a in actions) == (not speaker_up)
    # a second look at the repaired state plans nothing (level-triggered: repairs converge)
    assert plan(DESIRED, healthy()) == []


def test_a_dead_services_process_is_started_again_by_a_services_sync():
    running = replace(healthy(), services_configured=True, services_pid=4242)
    assert plan(DESIRED, running) == []
    (action,) = plan(DESIRED, replace(running, services_pid=None))
    assert isinstance(action, SyncServices) and "services process" in action.reason
    assert plan(DESIRED, replace(running, services_configured=False, services_pid=None)) == []  # nothing to serve


def test_missing_routes_are_other_speakers_prefixes_a_node_lacks():
    from lab.controller.plan import missing_routes

    announced = {"h1": ("10.0.0.0/26",), "h2": ("10.0.0.64/26", "10.0.1.0/26"), "ext": ()}
    routes = {"h1": frozenset({"10.0.0.64/26", "10.0.1.0/26", "10.0.0.1/32"}), "h2": frozenset(),
              "ext": frozenset({"10.0.0.0/26", "10.0.0.64/26"})}
    assert missing_routes(announced, routes) == {"h2": ["10.0.0.0/26"], "ext": ["10.0.1.0/26"]}
