"""The lab's desired state, kept in an embedded SQLite database: the only writer of it.

What is kept: the lab spec as it was brought up, every object applied (Namespaces, Pods, policies, network
sets) as its validated document, where each pod runs and its address, and the IPAM records. Every write is
one transaction that bumps the revision, so a crash leaves either the old or the new state, never half.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    doc TEXT NOT NULL, revision INTEGER NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS placements (
    namespace TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL, ip TEXT NOT NULL UNIQUE,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS ipam (id INTEGER PRIMARY KEY CHECK (id = 1), records TEXT NOT NULL);
"""


@dataclass(frozen=True)
class ObjectKey:
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


@dataclass(frozen=True)
class Placement:
    namespace: str
    name: str
    host: str
    ip: str


class Store:
    """Opens (creating if needed) one lab's database. Use `transaction()` for every multi-step write."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """All writes inside happen together or not at all; the revision goes up once."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self
            self._bump_revision()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # meta -----------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    @property
    def revision(self) -> int:
        return int(self.get_meta("revision", 0))

    def _bump_revision(self) -> None:
        self.set_meta("revision", self.revision + 1)
        self.set_meta("updated_at", time.time())

    # objects --------------------------------------------------------------------------------------
    def put_object(self, key: ObjectKey, doc: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO objects(kind, namespace, name, doc, revision) VALUES(?, ?, ?, ?, ?) "
            "ON CONFLICT(kind, namespace, name) DO UPDATE SET doc = excluded.doc, revision = excluded.revision",
            (key.kind, key.namespace, key.name, json.dumps(doc, sort_keys=True), self.revision + 1),
        )

    def delete_object(self, key: ObjectKey) -> bool:
        cur = self._db.execute(
            "DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?", (key.kind, key.namespace, key.name)
        )
        return cur.rowcount > 0

    def get_object(self, key: ObjectKey) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT doc FROM objects WHERE kind = ? AND namespace = ? AND name = ?", (key.kind, key.namespace, key.name)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def objects(self, kinds: Iterable[str] | None = None) -> list[tuple[ObjectKey, dict[str, Any]]]:
        if kinds is None:
            rows = self._db.execute("SELECT kind, namespace, name, doc FROM objects ORDER BY kind, namespace, name")
        else:  # filtered by SQLite: only the wanted documents are parsed (a few Services among 3000 objects)
            wanted = sorted(set(kinds))
            if not wanted:
                return []
            rows = self._db.execute(
                f"SELECT kind, namespace, name, doc FROM objects WHERE kind IN ({', '.join('?' * len(wanted))}) "
                "ORDER BY kind, namespace, name", wanted)
        return [(ObjectKey(k, ns, n), json.loads(doc)) for k, ns, n, doc in rows]

    def objects_since(self, revision: int) -> list[tuple[ObjectKey, dict[str, Any]]]:
        """Objects written by a transaction after `revision` (deletions show as keys that are gone)."""
        rows = self._db.execute("SELECT kind, namespace, name, doc FROM objects WHERE revision > ?", (revision,))
        return [(ObjectKey(k, ns, n), json.loads(doc)) for k, ns, n, doc in rows]

    def object_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM objects").fetchone()[0])

    def object_keys(self) -> set[ObjectKey]:
        return {ObjectKey(*row) for row in self._db.execute("SELECT kind, namespace, name FROM objects")}

    # placements -----------------------------------------------------------------------------------
    def put_placement(self, placement: Placement) -> None:
        self._db.execute(
            "INSERT INTO placements(namespace, name, host, ip) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(namespace, name) DO UPDATE SET host = excluded.host, ip = excluded.ip",
            (placement.namespace, placement.name, placement.host, placement.ip),
        )

    def delete_placement(self, namespace: str, name: str) -> None:
        self._db.execute("DELETE FROM placements WHERE namespace = ? AND name = ?", (namespace, name))

    def placements(self) -> list[Placement]:
        rows = self._db.execute("SELECT namespace, name, host, ip FROM placements ORDER BY namespace, name")
        return [Placement(*row) for row in rows]

    # ipam -----------------------------------------------------------------------------------------
    def get_ipam_records(self) -> Any:
        row = self._db.execute("SELECT records FROM ipam WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def set_ipam_records(self, records: Any) -> None:
        self._db.execute(
            "INSERT INTO ipam(id, records) VALUES(1, ?) ON CONFLICT(id) DO UPDATE SET records = excluded.records",
            (json.dumps(records, sort_keys=True),),
        )
