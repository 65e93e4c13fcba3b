"""Scenario files: the built-in ones load, and mistakes are named by file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.labfile import load_lab_file
from lab.scenario import ScenarioError, available, load_scenario


@pytest.mark.parametrize("name", sorted(available()))
def test_builtin_scenarios_load_with_their_lab_files(name: str) -> None:
    loaded = load_scenario(name)
    assert loaded.scenario.steps and any(step.check for step in loaded.scenario.steps)
    load_lab_file(loaded.lab_file())


def test_the_demos_are_built_in() -> None:
    assert {"dev-prod-isolation", "quarantine", "microseg", "recipes", "bank-rollout"} <= set(available())


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.scenario.yaml"
    path.write_text(text)
    return str(path)


def test_mistakes_name_the_file_and_field(tmp_path: Path) -> None:
    text = """
title: t
lab: demo
steps:
  - say: x
    label: [{pod: dev/db, namespace: dev, set: {a: b}}]
    check: [{from: a, to: b, port: 70000, expect: maybe}]
"""
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    message = str(info.value)
    assert "s.scenario.yaml" in message
    assert "steps.0.label.0" in message and "exactly one of pod" in message
    assert "steps.0.check.0.port" in message and "steps.0.check.0.expect" in message


def test_missing_files_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="nowhere.yaml"):
        load_scenario(write(tmp_path, "title: t\nlab: demo\nsteps: [{say: x, apply: [nowhere.yaml]}]\n"))
    with pytest.raises(ScenarioError, match="no scenario 'nope'"):
        load_scenario("nope")
