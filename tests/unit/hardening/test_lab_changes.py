"""Issue #8 on a stored lab without a kernel: the checks an apply makes before the store changes (limits,
tiers, programmability), namespace deletion's reach, and CLI options (-p TCP, ports, --sample, --lab)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.apply import ApplyError, apply_sources, with_namespace_contents
from lab.cli import app, register_commands
from lab.labfile import parse_lab
from lab.objects import namespace_document
from lab.runtime import LabRuntime
from lab.store import ObjectKey
from lab.store_sqlite import SqliteStore as Store
from topology import names

register_commands()

POLICY = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: %s, namespace: dev}
spec: {tier: %s, selector: all(), ingress: [%s]}
"""


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabRuntime]:
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    spec = parse_lab({"name": "hu", "hosts": 1, "namespaces": [{"name": "dev"}],
                      "limits": {"policies": 2, "rules": 3}}, "lab.yaml", tmp_path)
    paths = names.LabPaths.for_lab("hu")
    paths.database.parent.mkdir(parents=True)
    store = Store(paths.database)
    with store.transaction():
        store.set_meta("spec", spec.model.model_dump(mode="json"))
        for ns in spec.model.namespaces:
            store.put_object(ObjectKey("Namespace", "", ns.name), namespace_document(ns))
    runtime = LabRuntime("hu", store=store)
    yield runtime
    runtime.close()


@pytest.mark.parametrize("text, expected", [
    (POLICY % ("nowhere.p", "nowhere", ""), "spec.tier: tier 'nowhere' does not exist"),
    (POLICY % ("p", "default", ", ".join(["{action: Allow}"] * 4)), "4 rules, more than the limit of 3"),
    ("\n---\n".join(POLICY % (f"p{i}", "default", "") for i in range(3)),
     "the lab would hold 3 policies, more than its limit of 2"),
])
def test_an_apply_is_refused_before_the_store_changes(runtime: LabRuntime, text: str, expected: str) -> None:
    revision = runtime.store.revision
    with pytest.raises(ApplyError, match=expected):
        apply_sources(runtime, [("p.yaml", text)])
    assert runtime.store.revision == revision


def test_namespace_deletion_reaches_everything_stored_in_it(runtime: LabRuntime) -> None:
    with runtime.store.transaction():
        for key in (ObjectKey("Pod", "dev", "a"), ObjectKey("NetworkPolicy", "dev", "p"),
                    ObjectKey("NetworkSet", "dev", "s"), ObjectKey("Pod", "default", "b"),
                    ObjectKey("GlobalNetworkPolicy", "", "g")):
            runtime.store.put_object(key, {"kind": key.kind})
    keys = with_namespace_contents(runtime, [ObjectKey("Namespace", "", "dev")])
    assert set(map(str, keys)) == {"Pod dev/a", "NetworkPolicy dev/p", "NetworkSet dev/s", "Namespace dev"}
    assert keys[-1] == ObjectKey("Namespace", "", "dev")  # contents first


@pytest.mark.parametrize("args", [["matrix", "-p", "TCP"], ["probe", "a/b", "c/d", "-p", "Udp"],
                                  ["latency", "-p", "ICMP"], ["diff", "-f", "x.yaml", "-p", "SCTP"]])
def test_protocols_are_accepted_in_any_case(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--lab", "nolabhere"])
    assert "Invalid value for '--protocol'" not in result.output and result.exit_code != 2, result.output


@pytest.mark.parametrize("args, complaint", [(["probe", "a/b", "c/d", "--port", "99999"], "--port"),
                                             (["matrix", "--port", "0"], "--port"),
                                             (["matrix", "--sample", "-1"], "--sample"),
                                             (["explain", "a/b", "c/d", "--port", "70000"], "--port")])
def test_out_of_range_numbers_are_refused(args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and f"Invalid value for '{complaint}'" in result.output
