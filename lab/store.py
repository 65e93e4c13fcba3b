"""The lab's desired state: one interface, several backends (see docs/ARCHITECTURE.md, The store).

What is kept: the lab spec as it was brought up, every object applied (Namespaces, Pods, policies, network
sets) as its validated document, where each pod runs and its address, and the IPAM blocks with the host
each is affine to. Every write is one transaction that bumps the revision once, so a crash leaves either
the old or the new state, never half.

Backends (`lab/stores.py` picks one from the lab file's `store:`): `sqlite` (`lab/store_sqlite.py`, one
embedded database file per lab, the default) and `etcd` (`lab/store_etcd.py`, etcd 3 shared by several
machines). A backend implements the abstract methods; the IPAM records and the watch are built on them here.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit


def parse_endpoint(endpoint: str) -> tuple[str, str, int]:
    """(protocol, host, port) of `http://host:port`; ValueError naming what is wrong."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"etcd endpoint {endpoint!r} is not of the form http://HOST:PORT")
    try:
        port = parts.port or 2379
    except ValueError:
        raise ValueError(f"etcd endpoint {endpoint!r} has a bad port") from None
    return parts.scheme, parts.hostname, port


class StoreError(RuntimeError):
    """The store could not do what was asked (unreachable, refused); the message names the backend."""


class StoreIntegrityError(StoreError):
    """A write would break a rule of the store (one address per pod, one pod per address)."""


class StoreConflict(StoreError):
    """A compare-and-swap lost: another writer changed what this one had read."""


class ObjectKey(NamedTuple):  # a tuple: reading the bank's 3000 keys builds and hashes them in C
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


@dataclass(frozen=True)
class BlockRecord:
    """One IPAM block as stored: its affine host, its addresses (ip -> handle and the host using it) and
    the version a compare-and-swap must name to change it (0: the block does not exist)."""

    cidr: str
    host: str
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)
    version: int = 0

    def doc(self) -> dict[str, Any]:
        return {"host": self.host, "addresses": self.addresses}


class Store(abc.ABC):
    """One lab's desired state. Use `transaction()` for every multi-step write."""

    backend: str = ""

    # lifecycle ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager["Store"]:
        """All writes inside happen together or not at all, serialised with every other writer of the lab;
        the revision goes up once."""

    @abc.abstractmethod
    def destroy(self) -> None:
        """Remove every record of the lab (`lab down`)."""

    # meta -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_meta(self, key: str, default: Any = None) -> Any: ...

    @abc.abstractmethod
    def set_meta(self, key: str, value: Any) -> None: ...

    @property
    def revision(self) -> int:
        return int(self.get_meta("revision", 0))

    _placements_written = False  # this transaction wrote a placement

    def _bump_revision(self) -> None:
        """At the commit of every transaction (both backends call it)."""
        revision = self.revision + 1
        self.set_meta("revision", revision)
        self.set_meta("updated_at", time.time())
        if self._placements_written:  # once per transaction, not per pod (etcd: one request each)
            self.set_meta("placements_version", revision)
            self._placements_written = False

    # objects --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_object(self, key: ObjectKey, doc: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def delete_object(self, key: ObjectKey) -> bool: ...

    @abc.abstractmethod
    def get_object(self, key: ObjectKey) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def _all_objects(self) -> list[tuple[ObjectKey, dict[str, Any], int]]:
        """Every object with the revision that last wrote it, sorted by kind, namespace and name."""

    def objects(self, kinds: Iterable[str] | None = None) -> list[tuple[ObjectKey, dict[str, Any]]]:
        wanted = set(kinds) if kinds is not None else None
        return [(k, doc) for k, doc, _ in self._all_objects() if wanted is None or k.kind in wanted]

    def objects_since(self, revision: int) -> list[tuple[ObjectKey, dict[str, Any]]]:
        """Objects written by a transaction after `revision` (deletions show as keys that are gone)."""
        return [(k, doc) for k, doc, rev in self._all_objects() if rev > revision]

    def object_keys(self) -> set[ObjectKey]:
        return {k for k, _, _ in self._all_objects()}

    def deleted_since(self, revision: int) -> set[ObjectKey] | None:
        """Keys deleted by a transaction after `revision` and not written again since: what a follower at
        `revision` drops. None when the backend does not keep deletions that far back, and the caller compares
        every key instead."""
        return None

    def object_count(self) -> int:
        return len(self._all_objects())

    # placements -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_placement(self, placement: Placement) -> None:
        """StoreIntegrityError (at once or when the transaction commits) if another pod has that address."""

    @abc.abstractmethod
    def delete_placement(self, namespace: str, name: str) -> None: ...

    @abc.abstractmethod
    def placements(self) -> list[Placement]: ...

    @property
    def placements_version(self) -> int:
        """The revision of the last transaction that wrote a placement (0: none recorded yet). A reader that
        keeps the placements (the controller, every write) reads them again only when this moved: 1500
        rows cost ~5 ms, a third of a label change."""
        return int(self.get_meta("placements_version", 0))

    def _placement_written(self) -> None:
        """Every backend's put_placement and delete_placement call this, inside the writer's transaction. (A
        transaction rolled back leaves the mark for the next commit: one needless re-read, never a missed one.)"""
        self._placements_written = True

    # ipam blocks and affinities ---------------------------------------------------------------------
    @abc.abstractmethod
    def ipam_blocks(self) -> dict[str, BlockRecord]: ...

    @abc.abstractmethod
    def claim_block(self, cidr: str, host: str) -> str:
        """Compare-and-swap claim: the block becomes affine to `host` unless it exists. Returns the host the
        block is affine to afterwards (another host's name when it lost). Outside a transaction it takes
        effect at once; inside one, with the transaction."""

    @abc.abstractmethod
    def write_block(self, block: BlockRecord) -> None:
        """Replace the block if it still has `block.version` (0: create it if absent); StoreConflict when
        it does not (at once or when the transaction commits)."""

    @abc.abstractmethod
    def delete_block(self, cidr: str, version: int) -> None:
        """Delete the block if it still has `version`; StoreConflict when it does not."""

    def affinities(self) -> dict[str, list[str]]:
        """host -> the blocks affine to it."""
        out: dict[str, list[str]] = {}
        for cidr, block in sorted(self.ipam_blocks().items()):
            out.setdefault(block.host, []).append(cidr)
        return out

    def get_ipam_records(self) -> dict[str, Any] | None:
        """The blocks as `bgp.ipam.Ipam.from_records` reads them; None when no block exists."""
        blocks = self.ipam_blocks()
        if not blocks:
            return None
        addresses = [
            {"ip": ip, "handle": a["handle"], "host": a["host"], "block": cidr}
            for cidr, block in blocks.items() for ip, a in block.addresses.items()
        ]
        return {"blocks": [{"cidr": c, "host": b.host} for c, b in sorted(blocks.items())], "addresses": addresses}

    def set_ipam_records(self, records: dict[str, Any]) -> None:
        """Write what `Ipam.to_records` gives as per-block compare-and-swaps: only the blocks that changed,
        each guarded by the version read, so a concurrent writer of the same block makes this one fail."""
        stored = self.ipam_blocks()
        wanted: dict[str, BlockRecord] = {
            b["cidr"]: BlockRecord(b["cidr"], b["host"], {}) for b in records.get("blocks", [])
        }
        for a in records.get("addresses", []):
            wanted[a["block"]].addresses[a["ip"]] = {"handle": a["handle"], "host": a["host"]}
        for cidr, block in wanted.items():
            old = stored.get(cidr)
            if old is None:
                self.write_block(block)
            elif old.doc() != block.doc():
                self.write_block(BlockRecord(cidr, block.host, block.addresses, old.version))
        for cidr in stored.keys() - wanted.keys():
            self.delete_block(cidr, stored[cidr].version)

    # watch ----------------------------------------------------------------------------------------
    def wait_revision(self, after: int, timeout: float) -> int:
        """Block until the revision is above `after` (or `timeout` passed); returns the revision then.
        Backends with a native watch override this; the default polls."""
        deadline = time.monotonic() + timeout
        while True:
            revision = self.revision
            if revision > after or time.monotonic() >= deadline:
                return revision
            time.sleep(0.05)

    def watch(self, since: int, timeout: float) -> Iterator[int]:
        """Each new revision after `since`, as it is committed, until `timeout` passes without one."""
        while True:
            revision = self.wait_revision(since, timeout)
            if revision <= since:
                return
            yield revision
            since = revision
