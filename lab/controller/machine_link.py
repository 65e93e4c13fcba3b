"""What a machine's controller shares with the others through the store (see docs/ARCHITECTURE.md,
Several machines): it watches the store so a change written on any machine wakes it at once, and it
publishes its hosts' health so `lab status` on any machine shows the whole lab.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lab.store import Store
from lab.stores import open_store
from topology.names import LabPaths

HEALTH_KEY = "health/"  # + machine: meta written outside transactions (no revision), read by `lab status`
PUBLISH_EVERY = 5.0  # seconds: a health report costs a fresh observation of every host
STALE_AFTER = 30.0  # a machine whose report is older is reported as silent


class StoreWatch:
    """A thread following the store's revision with its own client (etcd's watch; SQLite polls); each new
    revision calls `on_change` (the controller then runs a pass at once)."""

    def __init__(self, paths: LabPaths, revision: int, on_change: Callable[[], None]) -> None:
        self._paths, self._revision, self._on_change = paths, revision, on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="store-watch", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                with open_store(self._paths) as store:
                    while not self._stop.is_set():
                        revision = store.wait_revision(self._revision, timeout=5.0)
                        if revision > self._revision:
                            self._revision = revision
                            self._on_change()
            except Exception:  # noqa: BLE001 (the store away for a moment: the resync timer still runs)
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()


def publish_health(paths: LabPaths, machine: str, health: dict[str, Any]) -> None:
    with open_store(paths) as store:
        store.set_meta(HEALTH_KEY + machine, {"at": time.time(), "hosts": health["hosts"],
                                              "degraded": health["degraded"], "pid": health["pid"]})


def machines_health(store: Store, machines: list[str], here: str | None) -> dict[str, dict[str, Any]]:
    """The last report of every other machine's controller, with its age; silent ones are degraded."""
    out: dict[str, dict[str, Any]] = {}
    for machine in machines:
        if machine == here:
            continue
        report = store.get_meta(HEALTH_KEY + machine)
        if report is None:
            out[machine] = {"age_s": None, "hosts": {}, "degraded": [f"machine {machine}: its controller never reported"]}
            continue
        age = time.time() - report["at"]
        degraded = [f"machine {machine}: {p}" for p in report["degraded"]]
        if age > STALE_AFTER:
            degraded.insert(0, f"machine {machine}: its controller has not reported for {age:.0f} s")
        out[machine] = {"age_s": round(age, 1), "hosts": report["hosts"], "degraded": degraded}
    return out
