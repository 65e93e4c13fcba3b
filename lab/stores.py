"""The store backends by name, and where a lab's store is found (see docs/ARCHITECTURE.md, Seams).

A lab file's `store:` picks the backend (`sqlite` by default). `lab up` records the choice in a small
locator file next to where the SQLite database would be, so every later command (on any machine that has
the lab file's store reachable) opens the same store without the lab file.
To add a backend: a module with a `Store` subclass, then `register_store("<name>", opener)` below.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from lab.store import Store, StoreError
from topology import names
from topology.names import LabPaths

Opener = Callable[[LabPaths, list[str]], Store]
_BACKENDS: dict[str, Opener] = {}
DEFAULT_STORE = "sqlite"


def register_store(name: str, opener: Opener) -> None:
    _BACKENDS[name] = opener


def store_names() -> list[str]:
    return sorted(_BACKENDS)


def _open_sqlite(paths: LabPaths, endpoints: list[str]) -> Store:
    from lab.store_sqlite import SqliteStore

    return SqliteStore(paths.database)


def etcd_root(lab: str) -> str:
    """Every key of the lab carries the lab's prefix, so removing the lab removes exactly its keys."""
    return f"/netpol-lab/{names.PREFIX}-{lab}/"


def _open_etcd(paths: LabPaths, endpoints: list[str]) -> Store:
    from lab.store_etcd import EtcdStore

    return EtcdStore(endpoints, etcd_root(paths.lab))


register_store("sqlite", _open_sqlite)
register_store("etcd", _open_etcd)


def locator_file(paths: LabPaths) -> Path:
    return paths.database.with_name(paths.database.stem + ".store.json")


def create_store(paths: LabPaths, backend: str = DEFAULT_STORE, endpoints: list[str] | None = None) -> Store:
    """The store a lab is brought up with; remembers a non-default backend for later commands."""
    if backend not in _BACKENDS:
        raise StoreError(f"unknown store backend {backend!r} (known: {', '.join(store_names())})")
    store = _BACKENDS[backend](paths, list(endpoints or []))
    if backend != DEFAULT_STORE:
        locator = locator_file(paths)
        locator.parent.mkdir(parents=True, exist_ok=True)
        locator.write_text(json.dumps({"backend": backend, "endpoints": list(endpoints or [])}))
    return store


def store_exists(paths: LabPaths) -> bool:
    return paths.database.exists() or locator_file(paths).exists()


def open_store(paths: LabPaths) -> Store:
    """The store of a lab that is up (its locator names the backend; none: SQLite)."""
    locator = locator_file(paths)
    if locator.exists():
        found = json.loads(locator.read_text())
        return _BACKENDS[found["backend"]](paths, found["endpoints"])
    return _BACKENDS[DEFAULT_STORE](paths, [])


def destroy_store(paths: LabPaths) -> None:
    """Remove the lab's records (etcd keys or the database file) and its locator; quiet when gone."""
    if store_exists(paths):
        try:
            open_store(paths).destroy()
        except StoreError:  # an etcd that is gone took the records with it
            pass
    locator_file(paths).unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):
        paths.database.with_name(paths.database.name + suffix).unlink(missing_ok=True)
