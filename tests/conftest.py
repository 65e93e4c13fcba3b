"""Test-wide set-up: root integration tests fail (never skip) without root."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.fail("this integration test needs root (real namespaces, nftables and packets): run it with sudo")


# Engine variants (tests/integration/engine_variants.py): every test parametrised over them runs on netns;
# on Docker pods and on Mininet the normal suite runs only the subset marked `on_every_engine`, and
# `--all-engines` runs every one of them on every engine.
OTHER_ENGINES = {"docker-pods", "mininet"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--all-engines", action="store_true",
                     help="run every engine-parametrised test on Docker pods and Mininet too, not only the subset")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--all-engines"):
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        other = any(isinstance(v, str) and v in OTHER_ENGINES for v in params.values())
        (drop if other and item.get_closest_marker("on_every_engine") is None else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def etcd_endpoint() -> Iterator[str]:
    """One etcd per test session (a child process on free loopback ports); tests use distinct key roots."""
    from lab.etcd_child import running_etcd

    with running_etcd() as url:
        yield url
