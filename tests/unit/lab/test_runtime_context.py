"""A lab is opened with `with`: its store is closed on the way out, also when the body fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lab.runtime import LabNotUp, LabRuntime
from lab.store_sqlite import SqliteStore as Store
from topology import names


@pytest.fixture
def lab_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    Store(names.LabPaths.for_lab("cx1").database).close()
    return "cx1"


def test_the_store_is_closed_when_the_block_ends_or_fails(lab_state: str) -> None:
    with LabRuntime.open(lab_state) as runtime:
        assert runtime.store.revision == 0
    with pytest.raises(sqlite3.ProgrammingError):
        runtime.store.revision
    with pytest.raises(KeyError), LabRuntime.open(lab_state) as failing:
        raise KeyError("the body failed")
    with pytest.raises(sqlite3.ProgrammingError):
        failing.store.revision


def test_a_lab_that_is_not_up_is_refused_by_name(lab_state: str) -> None:
    with pytest.raises(LabNotUp, match="no lab named 'cx2'"):
        LabRuntime.open("cx2")
