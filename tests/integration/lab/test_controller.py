"""The controller alone repairs every fault within 3 resync intervals, shown by real packets.

One lab (3 hosts, a BIRD reflector, ExaBGP speakers, a NetworkPolicy that lets only namespace dev reach
dev/db). Each fault is made while the test holds the lab's change lock, so the controller cannot repair it
yet: `lab status` must report the degradation and packets show the harm; then the lock is released and
the repair is timed by events and by packets: the denied flow stays (or is again) denied, the allowed one
comes back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bgp.files import SpeakerFiles
from lab import pipeline
from lab.controller import events, launcher
from lab.labfile import parse_lab
from lab.pod_plans import pod_plans
from lab.runtime import LabRuntime
from tests.integration.lab.reach import tcp_outcomes
from topology import names, netns, processes

pytestmark = pytest.mark.root

LAB = "ctl"
RESYNC = 1.0
REPAIR_WITHIN = 3 * RESYNC
POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-dev, namespace: dev}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {env: dev}}}]}]
"""


def lab_data() -> dict[str, Any]:
    return {
        "name": LAB, "hosts": 3, "bgp": {"layout": "route-reflector", "holdTime": 3},
        "namespaces": [{"name": "dev", "labels": {"env": "dev"}}, {"name": "prod", "labels": {"env": "prod"}}],
        "pods": [
            {"name": "web", "namespace": "dev", "host": "node1", "labels": {"app": "web"},
             "ports": [{"containerPort": 80}]},
            {"name": "db", "namespace": "dev", "host": "node2", "labels": {"app": "db"},
             "ports": [{"containerPort": 80}]},
            {"name": "web", "namespace": "prod", "host": "node3", "labels": {"app": "web"},
             "ports": [{"containerPort": 80}]},
        ],
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[names.LabPaths]:
    root = tmp_path_factory.mktemp("ctl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(names.STATE_ROOT_ENV, str(root / "state"))
        mp.setenv(names.RUN_ROOT_ENV, str(root / "run"))
        (root / "policy.yaml").write_text(POLICY)
        data = {**lab_data(), "apply": [str(root / "policy.yaml")]}
        paths = names.LabPaths.for_lab(LAB)
        try:
            pipeline.up(parse_lab(data, "<controller test>", root), timeout=60, resync=RESYNC)
            yield paths
        finally:
            controller = launcher.running_pid(paths)
            pipeline.down(LAB, force=True)
            assert not netns.list_netns(names.lab_netns_prefix(LAB))
            assert controller is None or not processes.running(controller)  # lab down stops it


def pod(key: str) -> tuple[str, str]:
    """(netns, ip) of a pod."""
    runtime = LabRuntime.open(LAB)
    try:
        plan = next(p for p in pod_plans(runtime) if p.key == key)
    finally:
        runtime.close()
    return plan.netns, str(plan.ip)


def outcome(src: str, dst: str) -> str:
    src_netns, _ = pod(src)
    _, ip = pod(dst)
    return tcp_outcomes(src_netns, [(ip, 80)], timeout=1.0)[(ip, 80)]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


def allowed_and_denied_hold() -> bool:
    return outcome("dev/web", "dev/db") == "accepted" and outcome("prod/web", "dev/db") == "no answer"


def status(paths: names.LabPaths) -> dict[str, Any]:
    return launcher.ask(paths, {"op": "status"}, timeout=30)


@contextmanager
def controller_held_off(paths: names.LabPaths) -> Iterator[None]:
    """The lab's change lock: the controller skips its passes (but still answers) until it is released."""
    runtime = LabRuntime.open(LAB)
    try:
        with open(paths.config_file("changes.lock"), "w") as lock:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    finally:
        runtime.close()


def repair_event(paths: names.LabPaths, since: float, what: str) -> events.Event | None:
    return next((e for e in events.read(paths) if e.time >= since and e.kind == "repair" and e.what == what), None)


def wait_repaired(paths: names.LabPaths, since: float, what: str, timeout: float = 60) -> float:
    """Seconds from `since` (the lock released) until the controller started the repair (an event is written
    when the repair is done; its duration is the kernel's and the machine's, not the controller's delay)."""
    wait_for(lambda: repair_event(paths, since, what) is not None, timeout, f"{what} done")
    event = repair_event(paths, since, what)
    assert event is not None
    return event.time - event.seconds - since


def test_the_lab_starts_healthy_with_its_controller(lab):
    pid = launcher.running_pid(lab)
    assert pid is not None and processes.running(pid)
    wait_for(lambda: not status(lab)["degraded"], 30, "healthy after up")
    assert allowed_and_denied_hold()
    health = status(lab)
    assert set(health["hosts"]) == {"node1", "node2", "node3"}
    assert all(h["in_sync"] and h["agent"] for h in health["hosts"].values())
    # one controller per lab: a second one refuses to start
    second = subprocess.run([sys.executable, "-m", "lab.controller", "--lab", LAB, "--run-dir", str(lab.run_dir)],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 3 and "already running" in second.stderr
    assert oct(os.stat(lab.config_file("controller.sock")).st_mode & 0o777) == "0o600"
    # It adopted the tables `lab up` had just written: replacing one unregisters its hooks, and the kernel
    # then drops every packet held in a queue of that namespace (a shaped link's delay line lost probes).
    replaced = [e.reason for e in events.read(lab) if e.what == "ReprogramHost"]
    assert replaced == [], replaced


@pytest.mark.parametrize("victim", ["speaker node1", "route agent node2", "reflector rr1", "responder"])
def test_a_killed_process_is_restarted(lab, victim):
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy before the fault")
    with controller_held_off(lab):
        pid = victim_pid(lab, victim)
        os.kill(pid, signal.SIGKILL)
        processes.wait_gone(pid, 5)
        if victim != "route agent node2":  # ExaBGP respawns its own agent: that one may never be seen down
            degraded = status(lab)["degraded"]
            assert any(victim in d or "route(s) missing" in d for d in degraded), degraded
        killed_at = time.time()  # the lock goes now: from here on the controller may act
    name = "speaker node2" if victim == "route agent node2" else victim
    if victim != "route agent node2":
        assert wait_repaired(lab, killed_at, "RestartProcess") <= REPAIR_WITHIN
        row = next(r for r in status(lab)["processes"] if r["name"] == name)
        assert row["restarts"] >= 1 and row["pid"] != pid and f"pid {pid}" in row["last_exit"]
    wait_for(lambda: not status(lab)["degraded"], 60, f"healthy again after {victim}")
    wait_for(allowed_and_denied_hold, 30, "allowed flow back, denied still denied")


def victim_pid(paths: names.LabPaths, victim: str) -> int:
    if victim.startswith("route agent"):
        pid = processes.read_pid(SpeakerFiles.of(paths, victim.split()[-1]).agent_pid)
    elif victim.startswith("speaker"):
        pid = processes.read_pid(SpeakerFiles.of(paths, victim.split()[-1]).pid)
    elif victim.startswith("reflector"):
        pid = processes.read_pid(paths.config_file(f"bird-{victim.split()[-1]}.pid"))
    else:
        pid = processes.read_pid(names.responder_pid_file(paths))
    assert pid is not None and processes.running(pid), victim
    return pid


def test_a_flushed_host_table_is_reprogrammed(lab):
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy before the fault")
    host_ns = names.host_netns(LAB, "node2")
    with controller_held_off(lab):
        subprocess.run(["ip", "netns", "exec", host_ns, "nft", "flush", "ruleset"], check=True)
        assert outcome("prod/web", "dev/db") == "accepted"  # fail open while the table is gone
        health = status(lab)
        assert not health["hosts"]["node2"]["in_sync"] and "drift" in health["hosts"]["node2"]["problem"]
        flushed_at = time.time()
    assert wait_repaired(lab, flushed_at, "ReprogramHost") <= REPAIR_WITHIN
    assert outcome("prod/web", "dev/db") == "no answer"  # denied again
    assert outcome("dev/web", "dev/db") == "accepted"
    assert status(lab)["hosts"]["node2"]["in_sync"]


def test_a_deleted_pod_namespace_is_made_again(lab):
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy before the fault")
    db_netns, _ = pod("dev/db")
    with controller_held_off(lab):
        subprocess.run(["ip", "netns", "del", db_netns], check=True)
        # (the responder's sockets keep the unnamed namespace alive: packets still reach it for now)
        assert any("not plumbed" in d for d in status(lab)["degraded"])
        deleted_at = time.time()
    assert wait_repaired(lab, deleted_at, "RecreatePods") <= REPAIR_WITHIN
    wait_for(allowed_and_denied_hold, 10, "allowed flow back to the new namespace, denied still denied")
    assert netns.exists(db_netns)


def test_a_killed_controller_leaves_filters_enforcing_and_comes_back_without_disturbing_them(lab):
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy before the fault")
    old = launcher.running_pid(lab)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    processes.wait_gone(old, 5)
    assert launcher.running_pid(lab) is None
    assert allowed_and_denied_hold()  # the kernel keeps the last program
    since = time.time()
    from lab.health import controller_health

    health = controller_health(lab)  # what `lab status` does: start it again, and say it was down
    assert health["running"] and "the controller was down (started again now)" in health["degraded"]
    assert launcher.running_pid(lab) not in (None, old)
    wait_for(lambda: not status(lab)["degraded"], 30, "healthy after the restart")
    assert allowed_and_denied_hold()
    reprogrammed = [e for e in events.read(lab) if e.time >= since and e.what == "ReprogramHost"]
    assert reprogrammed == []  # the new controller adopted the tables the old one wrote


def test_a_killed_apply_converges_without_the_user(lab, tmp_path):
    count = 60
    docs = [
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: bulk-{i}, namespace: prod, labels: {{app: bulk}}}}\n"
        f"spec: {{containers: [{{name: main, ports: [{{containerPort: 80}}]}}]}}\n"
        for i in range(count)
    ]
    (tmp_path / "bulk.yaml").write_text("---\n".join(docs))
    prefix = f"{names.lab_netns_prefix(LAB)}p-prod.bulk-"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}

    # `lab apply` dies (exit 137, as if killed -9) after it committed every pod and plumbed half of them: a
    # deterministic point, where killing it from outside races the batched plumbing.
    dies_halfway = (
        "import os, sys\n"
        "import lab.apply as apply\n"
        "plumb = apply._plumb_new_pods\n"
        "def half(runtime, keys, progress):\n"
        "    plumb(runtime, keys[: len(keys) // 2], progress)\n"
        "    os._exit(137)\n"
        "apply._plumb_new_pods = half\n"
        "from lab.cli import main\n"
        "main()\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", dies_halfway, "apply", "--lab", LAB, "-f", str(tmp_path / "bulk.yaml")],
        env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == 137, killed.stderr
    made = len(netns.list_netns(prefix))
    with LabRuntime.open(LAB) as runtime:
        stored = [p for p in runtime.store.placements() if p.name.startswith("bulk-")]
    assert len(stored) == count and made < count, (len(stored), made)  # the store ran ahead of the kernel
    wait_for(lambda: len(netns.list_netns(prefix)) == count, 60, "every stored pod plumbed")
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy after the interrupted apply")
    assert outcome("prod/bulk-59", "dev/web") == "accepted" and outcome("prod/web", "prod/bulk-0") == "accepted"
    assert outcome("prod/bulk-7", "dev/db") == "no answer"
    assert any(e.what == "RecreatePods" for e in events.read(lab))


def test_a_write_not_programmed_in_time_names_the_host_and_the_reason(lab):
    """A namespace label committed while the controller is held off: the wait times out naming every host
    and why, and the kernel still enforces the old policy; once the controller passes again, the same wait
    succeeds and the new verdict holds."""
    from lab.apply import key_for
    from lab.controller.launcher import ControllerError, wait_programmed

    wait_for(lambda: not status(lab)["degraded"], 60, "healthy before the write")
    key = key_for("namespace", "prod")

    def relabel(env: str) -> int:
        runtime = LabRuntime.open(LAB)
        try:
            doc = runtime.store.get_object(key)
            assert doc is not None
            doc["metadata"]["labels"]["env"] = env
            with runtime.store.transaction():
                runtime.store.put_object(key, doc)
            return runtime.store.revision
        finally:
            runtime.close()

    with controller_held_off(lab):
        revision = relabel("dev")  # prod's pods now count as dev: allowed to reach dev/db
        with pytest.raises(ControllerError) as late:
            wait_programmed(lab, revision, timeout=2.0)
        message = str(late.value)
        assert f"revision {revision} committed, not programmed within 2 s" in message
        assert all(f"node{i}: filter at revision" in message for i in (1, 2, 3)), message
        assert outcome("prod/web", "dev/db") == "no answer"  # not programmed: the old verdict
    wait_programmed(lab, revision, timeout=30.0)
    assert outcome("prod/web", "dev/db") == "accepted"
    wait_programmed(lab, relabel("prod"), timeout=30.0)
    assert outcome("prod/web", "dev/db") == "no answer"


SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: db, namespace: dev}
spec:
  selector: {app: db}
  ports: [{port: 8080, targetPort: 80}]
"""


def test_services_are_the_controllers_and_a_flush_restores_their_dnat_too(lab):
    """The controller writes the Services' DNAT itself (the CLI only waits), records the generation after
    that write (so it is no drift: nothing is reprogrammed), and a flushed host gets both tables back."""
    from lab.apply import apply_sources, delete_keys, key_for

    wait_for(lambda: not status(lab)["degraded"], 60, "healthy before the Service")
    since = time.time()
    with LabRuntime.open(LAB) as runtime:
        apply_sources(runtime, [("svc.yaml", SERVICE)])
        cluster_ip = runtime.store.get_object(key_for("svc", "dev/db"))["spec"]["clusterIP"]  # type: ignore[index]
    web_netns, _ = pod("dev/web")
    prod_netns, _ = pod("prod/web")

    def through_service(netns_name: str) -> str:
        return tcp_outcomes(netns_name, [(cluster_ip, 8080)], timeout=1.0)[(cluster_ip, 8080)]

    assert through_service(web_netns) == "accepted"  # programmed when `apply` returned
    assert through_service(prod_netns) == "no answer"  # the policy holds behind the DNAT
    time.sleep(3 * RESYNC)  # a few passes: the controller's own Services write is not taken for drift
    done = [e for e in events.read(lab) if e.time >= since]
    assert not [e for e in done if e.what == "ReprogramHost"], [e.reason for e in done]
    assert not status(lab)["degraded"]
    try:
        with controller_held_off(lab):
            subprocess.run(["ip", "netns", "exec", names.host_netns(LAB, "node1"), "nft", "flush", "ruleset"],
                           check=True)
            assert through_service(web_netns) != "accepted"  # no DNAT any more on dev/web's host
            flushed_at = time.time()
        assert wait_repaired(lab, flushed_at, "ReprogramHost") <= REPAIR_WITHIN
        assert through_service(web_netns) == "accepted"
        assert through_service(prod_netns) == "no answer"
    finally:
        with LabRuntime.open(LAB) as runtime:
            delete_keys(runtime, [key_for("svc", "dev/db")])


def lab_command(*args: str, terminal: bool) -> tuple[int, str, str]:
    """`python -m lab ARGS` as a user runs it: (exit code, stdout, stderr); stdout on a pseudo-terminal
    (rich then draws tables and colours) or a pipe."""
    env = dict(os.environ, COLUMNS="120", TERM="xterm-256color", PYTHONPATH=str(Path(__file__).parents[3]))
    argv = [sys.executable, "-m", "lab", *args, "--lab", LAB]
    if not terminal:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        return done.returncode, done.stdout, done.stderr
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, out.decode(), err.decode()


READS = [("get", "pods"), ("get", "pods", "--json"), ("get", "policies"),
         ("explain", "prod/web", "dev/db", "--port", "80"), ("explain", "dev/web", "dev/db", "--port", "80", "--json"),
         ("explain", "dev/nope", "dev/db")]


def test_reads_the_controller_draws_print_what_the_commands_print_from_the_store(lab):
    """`lab get` and `lab explain` drawn by the controller for a thin client (no typer, no rich in the
    command) print, on a terminal and on a pipe, exactly what the commands print when they read the store
    themselves; `lab status` draws the same lab and exits 1 while the lab is degraded."""
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy before the reads")
    warm = {(read, tty): lab_command(*read, terminal=tty) for read in READS for tty in (False, True)}
    assert all(not err for (read, _), (_, _, err) in warm.items() if read != READS[-1])
    assert warm[READS[-1], False][0] == 1 and "dev/nope" in warm[READS[-1], False][2]
    assert "\x1b[" in warm[READS[0], True][1] and "┃" in warm[READS[0], True][1]  # a rich table, coloured
    assert "\x1b[" not in warm[READS[0], False][1] and warm[READS[0], False][1].startswith("KIND")
    code, warm_status, _ = lab_command("status", terminal=False)
    assert code == 0 and "controller pid" in warm_status and "healthy" in warm_status
    for read in READS:
        for tty in (False, True):
            pid = launcher.running_pid(lab)
            assert pid is not None  # the command before started it again
            os.kill(pid, signal.SIGKILL)
            processes.wait_gone(pid, 5)
            cold = lab_command(*read, terminal=tty)  # starts the controller again, reads the store itself
            assert "was not running: started it again" in cold[2] and "does not answer" in cold[2], cold
            assert (cold[0], cold[1]) == warm[read, tty][:2], read
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy after the cold reads")
    with controller_held_off(lab):
        subprocess.run(["ip", "netns", "exec", names.host_netns(LAB, "node3"), "nft", "flush", "ruleset"], check=True)
        code, degraded, _ = lab_command("status", terminal=False)
    assert code == 1 and "DEGRADED" in degraded and "node3: filter drift" in degraded
    # the same lab drawn: everything above the controller's health is the same as before the fault
    assert degraded.split("controller pid")[0] == warm_status.split("controller pid")[0]
    wait_for(lambda: not status(lab)["degraded"], 60, "healthy after the repair")
