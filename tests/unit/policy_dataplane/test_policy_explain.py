"""Verdict traces rendered for people and as JSON, and `lab explain` from files."""

from __future__ import annotations

import json

from policy_model_helpers import FIXTURES, MICROSEG, fixture_world
from rich.console import Console
from typer.testing import CliRunner

from lab.app import app
from lab.cli import register_commands
from policy_dataplane.policy.evaluate import verdict
from policy_dataplane.policy.explain import render, to_json


def _text(renderable: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_render_walks_through_tiers_policies_rules_and_logs() -> None:
    world = fixture_world("quarantine.yaml")
    world.label_pod("dev", "db", quarantine="true")
    text = _text(render(verdict(world, "dev/web", "dev/db", "TCP", 5432)))
    assert "dev/web -> dev/db TCP/5432: DENIED" in text
    assert "ingress of dev/db: DENIED (denied by rule: quarantine (tier default) Deny rule #1)" in text
    assert "egress of dev/web: ALLOWED (not isolated" in text
    assert "quarantine (order 200): deny [rule #1 Deny]" in text
    assert "Log rule #0 hit" in text


def test_render_staged_and_no_policy_allowed_it() -> None:
    world = fixture_world("quarantine.yaml")
    text = _text(render(verdict(world, "prod/web", "dev/db", "TCP", 5432)))
    assert "no policy allowed it" in text
    assert "env-isolation (order 500): no-match [no rule matched]" in text
    assert "tier default (order 1000000) -> deny (tier default action)" in text


def test_json_trace() -> None:
    world = fixture_world("bank.yaml", "bank-dry-run.yaml")
    data = to_json(verdict(world, "bank/fraud", "bank/payments", "TCP", 8080))
    json.dumps(data)  # plain data
    assert data["allowed"] is True
    assert data["ingress"]["decided_by"] == {"policy": "bank-dry-run", "tier": "default", "rule": 1,
                                             "action": "Allow", "staged": False}
    assert data["ingress"]["logs"][0]["policy"] == "bank-dry-run"
    assert [p["outcome"] for p in data["ingress"]["tiers"][0]["policies"]] == ["no-match", "allow"]
    assert data["egress"]["reason"] == "not_isolated" and data["egress"]["isolated"] is False
    assert data["staged"] is None


def test_lab_explain_from_files_alone() -> None:
    register_commands()
    runner = CliRunner()
    files = ["-f", str(FIXTURES / "microseg-base.yaml"), "-f", str(MICROSEG / "case-6-only-crm-works.yaml")]
    ok = runner.invoke(app, ["explain", "crm/crm", "dev/client", "--protocol", "TCP", "--port", "9000", "--json", *files])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["allowed"] is True
    assert data["ingress"]["decided_by"]["policy"] == "dev/knp.default.client"
    denied = runner.invoke(app, ["explain", "dev/webui", "203.0.113.10", "--port", "443", *files])
    assert denied.exit_code == 0, denied.output
    assert "DENIED" in denied.output and "no policy allowed it" in denied.output
    missing = runner.invoke(app, ["explain", "dev/nope", "dev/client", "--port", "1", *files])
    assert missing.exit_code == 1 and "no pod dev/nope" in missing.output
    bad = runner.invoke(app, ["explain", "a/b", "c/d", "-f", str(FIXTURES / "nonexistent.yaml")])
    assert bad.exit_code == 1 and "No such file" in bad.output


def test_lab_explain_with_explicit_ips_for_pods_without_addresses(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "w.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: dev}\nspec: {containers: [{name: c}]}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: dev, labels: {app: b}}\nspec: {containers: [{name: c}]}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: dev}\n"
        "spec: {podSelector: {matchLabels: {app: b}}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/24}}]}]}\n"
    )
    register_commands()
    runner = CliRunner()
    args = ["explain", "dev/a", "dev/b", "--port", "80", "--json", "-f", str(path)]
    without = json.loads(runner.invoke(app, args).output)
    assert without["allowed"] is False and "has no IP" in without["ingress"]["notes"][0]
    with_ip = json.loads(runner.invoke(app, [*args, "--src-ip", "10.0.0.7"]).output)
    assert with_ip["allowed"] is True
