"""Scenario checks may name a Service or a lookup; a compile step names a tree."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lab.scenario import Check, Step, load_scenario


def test_a_check_is_a_flow_or_a_lookup() -> None:
    assert Check.model_validate({"from": "a/b", "lookup": "web.dev", "expect": "deny"}).describe() == "a/b looks up web.dev"
    assert Check.model_validate({"from": "a/b", "to": "svc/dev/web", "expect": "allow"}).describe() == "a/b -> svc/dev/web tcp/80"
    for both_or_none in ({"to": "x", "lookup": "y"}, {}):
        with pytest.raises(ValidationError, match="exactly one of to"):
            Check.model_validate({"from": "a/b", "expect": "allow", **both_or_none})


def test_compile_steps_and_their_trees_are_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert Step.model_validate({"say": "x", "compile": {"tree": "t", "optInAll": True}}).compile is not None
    path = tmp_path / "s.scenario.yaml"
    path.write_text("title: t\nlab: demo\nsteps: [{say: x, compile: {tree: nowhere}, check: []}]\n")
    with pytest.raises(Exception, match="files not found: nowhere"):
        load_scenario(str(path))


def test_bank_rollout_compiles_its_tree_and_checks_egress_by_name() -> None:
    loaded = load_scenario("bank-rollout")
    assert loaded.scenario.steps[0].compile is not None
    checks = [c for s in loaded.scenario.steps for c in s.check]
    assert any(c.lookup == "api.github.com" for c in checks)
    assert any(c.to == "svc/egress-operator-system/api-github-com" and c.expect == "deny" for c in checks)
