"""Unit tests expect literal names with the default prefix (`npl-tt1-h-h1`); they touch no kernel, so they
pin it whatever NETPOL_LAB_PREFIX the run was given for the integration tests."""

from __future__ import annotations

import pytest

from topology import names


@pytest.fixture(autouse=True)
def default_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names, "PREFIX", names.DEFAULT_PREFIX)
