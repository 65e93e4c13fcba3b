"""Pods as real Docker containers (the lab's own dockerd, the default busybox image): the dev/prod
isolation scenario measured by probes on a mixed lab where two pods serve with busybox httpd, checked
with wget through `lab exec`; clean-up that removes the lab's containers and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab import pipeline
from lab.cli import app, register_commands
from lab.labfile import LabFileError, parse_lab
from lab.pod_plans import pod_plans
from lab.scenario import SCENARIOS_DIR
from topology import names
from topology.docker_daemon import LABEL_LAB, LABEL_PREFIX, DockerDaemon, DockerError
from topology.docker_engine import stop_daemon_if_idle
from topology.docker_images import DEFAULT_IMAGE

pytestmark = pytest.mark.root
register_commands()
LAB = "itdk"
DEMO = SCENARIOS_DIR.parent / "labs" / "demo.yaml"
REPO = Path(__file__).parents[3]
WGET = ("timeout", "3", "wget", "-q", "-O-")  # busybox-static's own `wget -T` crashes (glibc static alarm)


def httpd(port: int) -> list[str]:
    return ["httpd", "-f", "-p", str(port), "-h", "/var/www"]


def docker_demo(tmp_path: Path) -> Path:
    """The demo lab on Docker pods: dev/api and prod/db run busybox httpd on their declared ports (the
    responder leaves them alone), dev/db stays a bare namespace, the others idle in the default image."""
    lab = yaml.safe_load(DEMO.read_text())
    lab.update(name=LAB, runtime="docker")
    for pod in lab["pods"]:
        key = f"{pod['namespace']}/{pod['name']}"
        if key in ("dev/api", "prod/db"):
            pod["command"] = httpd(pod["ports"][0]["containerPort"])
        if key == "dev/db":
            pod["runtime"] = "netns"
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(lab))
    scenario = yaml.safe_load((SCENARIOS_DIR / "dev-prod-isolation.scenario.yaml").read_text())
    scenario["lab"] = str(tmp_path / "lab.yaml")
    for step in scenario["steps"]:
        step["apply"] = [str(SCENARIOS_DIR / f) for f in step.get("apply", [])]
    path = tmp_path / "docker.scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def lab_exec(target: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", "exec", target, "--lab", LAB, "--", *argv],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=os.environ.copy())


def lab_containers(lab: str) -> list[str]:
    if not DockerDaemon().running():
        return []  # stopped by the last lab down of this prefix: no container left
    client = DockerDaemon().client()
    try:
        found = client.containers.list(all=True, filters={"label": [f"{LABEL_PREFIX}={names.PREFIX}", f"{LABEL_LAB}={lab}"]})
        return sorted(c.name for c in found)
    finally:
        client.close()


@pytest.fixture
def docker_lab(lab_dirs: Path):  # type: ignore[no-untyped-def]
    yield lab_dirs
    pipeline.down(LAB, force=True)
    stop_daemon_if_idle()


def test_dev_prod_isolation_on_docker_pods_with_httpd_checked_by_probes_and_wget(docker_lab: Path) -> None:
    result = CliRunner().invoke(app, ["scenario", "run", str(docker_demo(docker_lab)), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    checks = [c for step in report["steps"] for c in step["checks"]]
    assert report["failures"] == 0 and len(checks) == 12
    assert {c["measured"] for c in checks} == {"allow", "deny"}

    # Seven containers (dev/db is a bare namespace), each labelled with the lab and named like its netns.
    assert lab_containers(LAB) == sorted(names.pod_netns(LAB, *k.split("/"))
                                         for k in ("dev/web", "dev/api", "prod/web", "prod/api", "prod/db"))
    status = json.loads(subprocess.run([sys.executable, "-m", "lab", "status", "--lab", LAB, "--json"],
                                       capture_output=True, text=True, cwd=REPO, check=True).stdout)
    ip = {f"{p['namespace']}/{p['name']}": p["ip"] for p in status["pods"]}

    # lab exec runs inside the container: busybox's own tools, the pod's own address and route.
    inside = lab_exec("dev/web", "sh", "-c", "ls /bin/busybox && ip -4 -o addr show dev eth0 && ip route")
    assert inside.returncode == 0, inside.stderr
    assert f"{ip['dev/web']}/32" in inside.stdout and "default via 169.254.1.1 dev eth0" in inside.stdout

    # The page comes from busybox httpd inside dev/api's container (the responder sends no HTTP).
    page = lab_exec("dev/web", *WGET, f"http://{ip['dev/api']}:8080/")
    assert (page.returncode, page.stdout) == (0, "netpol-lab pod\n"), page.stderr
    # A bare namespace pod (dev/db) reaches the container's server with the machine's curl, too.
    curl = lab_exec("dev/db", "curl", "-s", "-m", "3", f"http://{ip['prod/db']}:5432/")
    assert (curl.returncode, curl.stdout) == (0, "netpol-lab pod\n"), curl.stderr

    # With dev and prod isolated, the same wget from prod is dropped by dev/api's filter.
    applied = CliRunner().invoke(app, ["apply", "--lab", LAB, "-f", str(SCENARIOS_DIR / "dev-prod-isolation.yaml")],
                                 catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert lab_exec("dev/web", *WGET, f"http://{ip['dev/api']}:8080/").returncode == 0
    denied = lab_exec("prod/web", *WGET, f"http://{ip['dev/api']}:8080/")
    assert denied.returncode != 0 and denied.stdout == ""
    probe = CliRunner().invoke(app, ["probe", "prod/web", "dev/api", "-p", "tcp", "--port", "8080", "--lab", LAB,
                                     "--json"], catch_exceptions=False)
    assert json.loads(probe.stdout)["verdict"] == "deny", probe.output


def test_lab_down_removes_the_labs_containers_and_no_other(make_lab, docker_lab: Path) -> None:  # type: ignore[no-untyped-def]
    make_lab({"name": LAB, "hosts": 1, "runtime": "docker", "pods": [{"name": "a"}, {"name": "b", "runtime": "netns"}]})
    client = DockerDaemon().client()
    # Another lab's container in the same daemon, and one carrying no lab label at all.
    others = [client.containers.create(DEFAULT_IMAGE, ["/bin/sleep", "600"], network_mode="none",
                                       labels={LABEL_PREFIX: names.PREFIX, LABEL_LAB: "itdkother"}),
              client.containers.create(DEFAULT_IMAGE, ["/bin/sleep", "600"], network_mode="none")]
    try:
        assert lab_containers(LAB) == [names.pod_netns(LAB, "default", "a")]
        pipeline.down(LAB)
        assert lab_containers(LAB) == []
        assert not [n for n in os.listdir("/run/netns") if n.startswith(names.lab_netns_prefix(LAB))]
        for other in others:
            other.reload()  # still there
        assert DockerDaemon().running()  # not stopped while this prefix still has a container
    finally:
        for other in others:
            other.remove(force=True)
        client.close()
    stop_daemon_if_idle()
    assert not DockerDaemon().running()


def test_a_missing_image_fails_before_any_container_and_leaves_nothing(lab_dirs: Path) -> None:
    spec = parse_lab({"name": LAB, "hosts": 1, "runtime": "docker",
                      "pods": [{"name": "a", "image": "netpol-lab/not-here:1"}, {"name": "b"}]}, "<test>", lab_dirs)
    stages: list[str] = []
    try:
        with pytest.raises(DockerError, match=r"image 'netpol-lab/not-here:1' of pods default/a: .*never pulls"):
            pipeline.up(spec, timeout=30, progress=lambda done, total, what: stages.append(what))
        assert stages == []  # refused before the fabric's first namespace
        assert lab_containers(LAB) == []
        assert not pipeline.is_up(LAB)
    finally:
        pipeline.down(LAB, force=True)
        stop_daemon_if_idle()


def test_lab_file_image_on_a_netns_pod_is_refused_before_anything_starts(lab_dirs: Path) -> None:
    with pytest.raises(LabFileError, match="pod default/a: field image"):
        parse_lab({"name": LAB, "pods": [{"name": "a", "image": "x:1"}]}, "<test>", lab_dirs)


LATE_DOCKER_POD = """apiVersion: v1
kind: Pod
metadata:
  name: late
  namespace: default
  annotations: {netpol-lab.io/runtime: docker}
spec:
  nodeName: node1
  containers: [{name: main, image: netpol-lab/pod:busybox, command: [httpd, -f, -p, "80", -h, /var/www],
                ports: [{containerPort: 80}]}]
"""


def test_a_docker_pod_applied_at_run_time_serves_and_its_delete_removes_the_container(make_lab, docker_lab: Path) -> None:  # type: ignore[no-untyped-def]
    from lab.apply import ApplyError, apply_sources, delete_keys, key_for
    from lab.runtime import LabRuntime

    make_lab({"name": LAB, "hosts": 1, "pods": [{"name": "a"}]})  # a netns lab; the late pod is a container
    runtime = LabRuntime.open(LAB)
    try:
        with pytest.raises(ApplyError, match=r"Pod default/late: spec.containers\[0\].image: 'Bad Image'"):
            apply_sources(runtime, [("late.yaml", LATE_DOCKER_POD.replace("netpol-lab/pod:busybox", "Bad Image"))])
        apply_sources(runtime, [("late.yaml", LATE_DOCKER_POD)])
        late = next(p for p in pod_plans(runtime) if p.key == "default/late")
        assert lab_containers(LAB) == [late.netns]
        page = lab_exec("default/a", "curl", "-s", "-m", "3", f"http://{late.ip}:80/")
        assert page.stdout == "netpol-lab pod\n", page.stderr
        delete_keys(runtime, [key_for("pod", "default/late")])
        assert lab_containers(LAB) == [] and not os.path.exists(f"/run/netns/{late.netns}")
    finally:
        runtime.close()
