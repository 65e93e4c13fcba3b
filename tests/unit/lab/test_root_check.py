"""Commands that touch the kernel say they need root before doing anything; pure ones do not ask."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lab.cli import app, register_commands

register_commands()


@pytest.mark.parametrize("args", [["up"], ["down"], ["status"], ["matrix"], ["probe", "a/b", "c/d"],
                                  ["scenario", "run", "quarantine"]])
def test_kernel_commands_need_root(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "needs root" in result.output


def test_pure_commands_run_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert CliRunner().invoke(app, ["bank", "-n", "3"]).exit_code == 0
    assert CliRunner().invoke(app, ["scenario", "list"]).exit_code == 0
