"""Test-wide set-up: root integration tests fail (never skip) without root."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.fail("this integration test needs root (real namespaces, nftables and packets): run it with sudo")


@pytest.fixture(scope="session")
def etcd_endpoint() -> Iterator[str]:
    """One etcd per test session (a child process on free loopback ports); tests use distinct key roots."""
    from lab.etcd_child import running_etcd

    with running_etcd() as url:
        yield url
