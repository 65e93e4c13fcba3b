"""Docker pods without Docker: the daemon's flags, the default image's file system, the lab file fields and
the Pod documents that carry a pod's runtime, image and command."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.labfile import LabFileError, parse_lab
from lab.objects import pod_container, pod_document
from topology import batch
from topology.docker_daemon import DaemonPaths, dockerd_argv
from topology.docker_images import DEFAULT_IMAGE, container_problems, rootfs_tar
from topology.model import ContainerPlan


def test_dockerd_leaves_the_machines_networking_alone_and_keeps_to_its_own_folders() -> None:
    paths = DaemonPaths.for_prefix("abc")
    argv = dockerd_argv(paths)
    for flag in ("--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false", "--ip-masq=false"):
        assert flag in argv
    assert argv[argv.index("--host") + 1] == "unix:///run/netpol-lab/docker-abc/docker.sock"
    for option in ("--pidfile", "--exec-root", "--data-root"):
        assert "docker-abc" in argv[argv.index(option) + 1]
    assert DaemonPaths.for_prefix("abd").socket != paths.socket  # one daemon per prefix


def test_default_image_rootfs_has_busybox_a_link_per_applet_and_a_page() -> None:
    data = rootfs_tar(b"\x7fELF fake", ["sh", "httpd", "wget", "busybox"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/busybox"].mode == 0o755
        assert tar.extractfile("bin/busybox").read() == b"\x7fELF fake"  # type: ignore[union-attr]
        assert tar.extractfile("var/www/index.html").read() == b"netpol-lab pod\n"  # type: ignore[union-attr]
    for applet in ("sh", "httpd", "wget"):
        assert members[f"bin/{applet}"].issym() and members[f"bin/{applet}"].linkname == "busybox"
    assert members["tmp"].mode == 0o1777
    assert "bin/busybox" in members and not members["bin/busybox"].issym()


@pytest.mark.parametrize("image", ["netpol-lab/pod:busybox", "nginx", "my.org/team/app:1.2-rc_3",
                                   "busybox@sha256:" + "a" * 64])
def test_image_references_that_docker_accepts(image: str) -> None:
    assert container_problems(image, None) == []


@pytest.mark.parametrize("image", ["Nginx", "bad image", "-x", "a:b:c", "x/", "evil;rm -rf /", ""])
def test_image_references_refused(image: str) -> None:
    assert container_problems(image, None) and "field image" in container_problems(image, None)[0]


def test_commands_must_be_a_non_empty_argv_without_nul() -> None:
    assert container_problems(None, []) == ["field command: give at least the program to run, or leave command out"]
    assert container_problems(None, ["sh", "a\0b"])[0].startswith("field command[1]")
    assert container_problems(None, ["httpd", "-f", "-p", "80"]) == []


def lab(**pod: object) -> dict:  # type: ignore[type-arg]
    return {"name": "x", "namespaces": [{"name": "dev"}], "pods": [{"name": "web", "namespace": "dev", **pod}]}


def test_lab_runtime_is_each_pods_unless_the_pod_says_otherwise() -> None:
    data = lab(command=["httpd", "-f"])
    data["runtime"], data["image"] = "docker", "myimage:1"
    data["pods"].append({"name": "bare", "namespace": "dev", "runtime": "netns"})
    spec = parse_lab(data, "lab.yaml", Path("."))
    web, bare = spec.model.pods
    assert (spec.pod_runtime(web), spec.pod_image(web)) == ("docker", "myimage:1")
    assert (spec.pod_runtime(bare), spec.pod_image(bare)) == ("netns", None)


def test_image_or_command_on_a_netns_pod_names_file_pod_and_field() -> None:
    with pytest.raises(LabFileError) as info:
        parse_lab(lab(image="nginx", command=["x"]), "lab.yaml", Path("."))
    assert info.value.problems == ["pod dev/web: field image: only a pod with runtime: docker has one",
                                   "pod dev/web: field command: only a pod with runtime: docker has one"]
    assert "lab.yaml" in str(info.value)


def test_bad_image_and_command_of_a_docker_pod_are_all_reported() -> None:
    with pytest.raises(LabFileError) as info:
        parse_lab({**lab(runtime="docker", image="Bad Image", command=[]), "image": "ALSO bad"}, "f.yaml", Path("."))
    problems = info.value.problems
    assert any(p.startswith("pod dev/web: field image:") for p in problems)
    assert any(p.startswith("pod dev/web: field command:") for p in problems)
    assert any(p.startswith("lab: field image:") for p in problems)


def pod_spec(**fields: object):  # type: ignore[no-untyped-def]
    return parse_lab(lab(**fields), "f", Path(".")).model.pods[0]


def test_pod_document_carries_runtime_image_and_command() -> None:
    assert pod_container(pod_document(pod_spec(), "web", "node1")) is None
    idle = pod_container(pod_document(pod_spec(runtime="docker"), "web", "node1", "docker", None))
    assert idle == ContainerPlan(DEFAULT_IMAGE, None, responder=True)  # the responder answers its ports
    served = pod_document(pod_spec(runtime="docker", command=["httpd", "-f"]), "web", "node1", "docker", None)
    assert pod_container(served) == ContainerPlan(DEFAULT_IMAGE, ("httpd", "-f"), responder=False)
    own = pod_document(pod_spec(runtime="docker", image="app:1"), "web", "node1", "docker", "app:1")
    assert pod_container(own) == ContainerPlan("app:1", None, responder=False)  # the image's own command


@given(st.lists(st.booleans(), min_size=1, max_size=6))
def test_container_pods_get_a_veth_but_no_new_namespace(flags: list[bool]) -> None:
    from topology.model import plan_pod

    pods = [dataclasses.replace(plan_pod("tt1", "dev", f"p{i}", "h1", f"10.0.0.{i + 1}"),
                                container=ContainerPlan(DEFAULT_IMAGE) if docker else None)
            for i, docker in enumerate(flags)]  # fmt: skip
    lines = batch.pod_lines(pods)
    assert [ln for ln in lines if ln.startswith("netns add")] == [
        f"netns add {p.netns}" for p in pods if p.container is None]
    assert sum(ln.startswith("link add") for ln in lines) == len(pods)
