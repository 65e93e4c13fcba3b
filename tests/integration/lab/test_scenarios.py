"""Scripted scenarios end to end: every documented verdict is confirmed by the oracle and by real packets,
and a wrong one makes the run fail. Every built-in scenario runs on a renamed copy of its lab, so a lab of
the same name that someone has up is never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab import pipeline
from lab.cli import app, register_commands
from lab.scenario import SCENARIOS_DIR, available

pytestmark = pytest.mark.root
register_commands()
LAB = "itms"
DEMO = SCENARIOS_DIR.parent / "labs" / "demo.yaml"


def private_copy(tmp_path: Path, scenario: str, tamper=None) -> Path:  # type: ignore[no-untyped-def]
    """The scenario, its lab file and the lab's policy files under tmp_path, the lab renamed, the steps' file
    references made absolute."""
    source = SCENARIOS_DIR / f"{scenario}.scenario.yaml"
    data = yaml.safe_load(source.read_text())
    lab_file = (DEMO if data["lab"] == "demo" else SCENARIOS_DIR / data["lab"]).resolve()
    lab = yaml.safe_load(lab_file.read_text())
    lab["name"] = LAB
    for name in lab.get("apply", []):  # a lab file reads policy files from its own folder only: copy them
        (tmp_path / name).write_text((lab_file.parent / name).read_text())
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(lab))
    data["lab"] = str(tmp_path / "lab.yaml")
    for step in data["steps"]:
        for files in ("apply", "delete"):
            step[files] = [str(SCENARIOS_DIR / f) for f in step.get(files, [])]
        if "compile" in step:
            step["compile"]["tree"] = str(SCENARIOS_DIR / step["compile"]["tree"])
    if tamper:
        tamper(data)
    path = tmp_path / f"{scenario}.scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def scenario_lab(lab_dirs: Path):  # type: ignore[no-untyped-def]
    yield lab_dirs
    pipeline.down(LAB, force=True)


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["scenario", "run", *args, "--json"], catch_exceptions=False)


def test_microseg_scenario_every_check_as_documented(scenario_lab: Path) -> None:
    result = run(str(private_copy(scenario_lab, "microseg")))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["failures"] == 0 and report["checks"] == 35 and len(report["steps"]) == 7
    checks = [c for step in report["steps"] for c in step["checks"]]
    assert {c["measured"] for c in checks} == {"allow", "deny"}  # both verdicts really seen on the wire
    assert all(c["expect"] == c["oracle"] == c["measured"] for c in checks)


@pytest.mark.parametrize("name", sorted(set(available()) - {"microseg"}))
def test_every_builtin_scenario_plays_as_documented(scenario_lab: Path, name: str) -> None:
    result = run(str(private_copy(scenario_lab, name)), "--down")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["failures"] == 0 and report["checks"] >= 5


def test_a_wrong_documented_lookup_fails_the_run(scenario_lab: Path) -> None:
    def claim_names_resolve_under_deny_all_egress(data: dict) -> None:  # type: ignore[type-arg]
        step = next(s for s in data["steps"] if "4-deny-all-egress.yaml" in str(s.get("apply")))
        data["steps"] = [data["steps"][0], {**step, "check": [c for c in step["check"] if "lookup" in c][:1]}]
        data["steps"][1]["check"][0]["expect"] = "allow"

    result = run(str(private_copy(scenario_lab, "recipes", claim_names_resolve_under_deny_all_egress)), "--down")
    assert result.exit_code == 1
    wrong = [c for step in json.loads(result.stdout)["steps"] for c in step["checks"] if not c["ok"]]
    assert wrong == [{"check": "shop/frontend looks up backend.shop.svc.cluster.local", "expect": "allow",
                      "oracle": "deny", "measured": "deny", "ok": False}]


def test_a_wrong_documented_verdict_fails_the_run(scenario_lab: Path) -> None:
    def claim_case_1_still_lets_the_client_out(data: dict) -> None:  # type: ignore[type-arg]
        data["steps"] = data["steps"][:2]
        data["steps"][1]["check"][0]["expect"] = "allow"  # dev/client -> tasks:443, denied by case 1

    path = private_copy(scenario_lab, "microseg", claim_case_1_still_lets_the_client_out)
    result = run(str(path), "--down")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    wrong = [c for step in report["steps"] for c in step["checks"] if not c["ok"]]
    assert wrong == [{"check": "dev/client -> tasks tcp/443", "expect": "allow", "oracle": "deny",
                      "measured": "deny", "ok": False}]
    assert not pipeline.is_up(LAB)  # --down took it away
