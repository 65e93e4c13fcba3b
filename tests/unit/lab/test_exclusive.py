"""Changes to one lab run one at a time: a second changer waits for the first to finish."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lab.runtime import LabRuntime, one_change_at_a_time
from lab.store_sqlite import SqliteStore as Store
from topology import names


@pytest.fixture
def runtime_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(names.STATE_ROOT_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(names.RUN_ROOT_ENV, str(tmp_path / "run"))
    paths = names.LabPaths.for_lab("lk1")
    paths.database.parent.mkdir(parents=True)
    Store(paths.database).close()
    return lambda: LabRuntime("lk1")


def test_changes_of_one_lab_never_overlap(runtime_factory) -> None:  # type: ignore[no-untyped-def]
    spans: list[tuple[float, float]] = []

    @one_change_at_a_time
    def change(runtime: LabRuntime, hold: float) -> str:
        started = time.monotonic()
        time.sleep(hold)
        spans.append((started, time.monotonic()))
        return runtime.lab

    def worker() -> None:
        with runtime_factory() as runtime:
            assert change(runtime, 0.15) == "lk1"

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 3
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False))


def test_the_lock_is_released_when_a_change_fails(runtime_factory) -> None:  # type: ignore[no-untyped-def]
    @one_change_at_a_time
    def failing(runtime: LabRuntime) -> None:
        raise ValueError("refused")

    with runtime_factory() as runtime:
        with pytest.raises(ValueError):
            failing(runtime)
        done = threading.Event()

        def again() -> None:
            other = runtime_factory()
            with other.exclusive():
                done.set()
            other.close()

        thread = threading.Thread(target=again)
        thread.start()
        thread.join(timeout=5)
        assert done.is_set()
