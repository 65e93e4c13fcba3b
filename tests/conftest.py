"""Test-wide set-up: root integration tests fail (never skip) without root."""

from __future__ import annotations

import os

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.fail("this integration test needs root (real namespaces, nftables and packets): run it with sudo")
