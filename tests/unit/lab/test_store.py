"""The store interface, run on every backend: SQLite (a file) and etcd (a child etcd on loopback)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.store import BlockRecord, ObjectKey, Placement, Store, StoreConflict, StoreIntegrityError
from lab.store_etcd import EtcdStore
from lab.store_sqlite import SqliteStore

_roots = itertools.count()
OpenStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", "etcd"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens a new handle on one fresh store of the backend (each call: another client, as another
    process or machine would be)."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "s.db")
    endpoint = request.getfixturevalue("etcd_endpoint")
    root = f"/netpol-lab-test/{next(_roots)}-{tmp_path.name}/"
    return lambda: EtcdStore([endpoint], root)


def test_objects_round_trip_and_revision(open_store: OpenStore) -> None:
    with open_store() as store:
        assert store.revision == 0
        with store.transaction():
            store.put_object(ObjectKey("Namespace", "", "dev"), {"metadata": {"name": "dev"}})
            store.put_object(ObjectKey("Pod", "dev", "web"), {"spec": {"nodeName": "node1"}})
            store.put_placement(Placement("dev", "web", "node1", "192.168.0.1"))
        assert store.revision == 1
        assert store.get_object(ObjectKey("Namespace", "", "dev")) == {"metadata": {"name": "dev"}}
    with open_store() as again:  # another client sees it: it is stored, not held in the first
        assert again.revision == 1
        assert again.placements() == [Placement("dev", "web", "node1", "192.168.0.1")]
        assert again.object_keys() == {ObjectKey("Namespace", "", "dev"), ObjectKey("Pod", "dev", "web")}
        assert [k for k, _ in again.objects(kinds=["Pod"])] == [ObjectKey("Pod", "dev", "web")]


def test_reads_inside_a_transaction_see_its_writes(open_store: OpenStore) -> None:
    with open_store() as store:
        with store.transaction():
            store.put_object(ObjectKey("Pod", "dev", "a"), {"x": 1})
            assert store.get_object(ObjectKey("Pod", "dev", "a")) == {"x": 1}
            assert store.delete_object(ObjectKey("Pod", "dev", "a"))
            assert store.get_object(ObjectKey("Pod", "dev", "a")) is None
            assert not store.delete_object(ObjectKey("Pod", "dev", "a"))


def test_objects_since_a_revision(open_store: OpenStore) -> None:
    with open_store() as store:
        with store.transaction():
            store.put_object(ObjectKey("Pod", "dev", "a"), {"x": 1})
        with store.transaction():
            store.put_object(ObjectKey("Pod", "dev", "b"), {"x": 2})
        assert store.objects_since(1) == [(ObjectKey("Pod", "dev", "b"), {"x": 2})]
        assert len(store.objects_since(0)) == 2


def test_deletions_since_a_revision(open_store: OpenStore) -> None:
    """What a follower (the controller, `lab get`) asks instead of reading every key: each backend either
    lists the deletions after a revision, or says it cannot (None), never a wrong list."""
    a, b = ObjectKey("Pod", "dev", "a"), ObjectKey("NetworkPolicy", "dev", "b")
    with open_store() as store:
        with store.transaction():  # 1
            store.put_object(a, {"x": 1})
            store.put_object(b, {"x": 1})
        with store.transaction():  # 2
            assert store.delete_object(a)
            assert not store.delete_object(ObjectKey("Pod", "dev", "never"))  # not there: no deletion
        with store.transaction():  # 3: written again after its deletion
            store.put_object(a, {"x": 2})
        with store.transaction():  # 4
            store.delete_object(b)
        keys_at = {0: set(), 1: {a, b}, 2: {b}, 3: {a, b}, 4: {a}}
        for since in keys_at:  # `a` was deleted after 0, 1 and 2, but is there again: not listed
            found = store.deleted_since(since)
            assert found is None or found == ({b} if since < 4 else set()), (since, found)
            if found is not None:  # a follower at `since`: what it had, less the deleted, plus the written
                written = {k for k, _ in store.objects_since(since)}
                assert (keys_at[since] - found) | written == store.object_keys() == {a}


def test_a_database_made_before_the_deletion_log_says_it_cannot_list_older_deletions(tmp_path: Path) -> None:
    import sqlite3

    with SqliteStore(tmp_path / "old.db") as store:
        for i in range(3):
            with store.transaction():
                store.put_object(ObjectKey("Pod", "dev", f"p{i}"), {})
    db = sqlite3.connect(tmp_path / "old.db")  # as a database of the previous version was: no log, no mark
    db.execute("DROP TABLE deletions")
    db.execute("DELETE FROM meta WHERE key = 'deletions_logged_from'")
    db.commit()
    db.close()
    with SqliteStore(tmp_path / "old.db") as store:
        assert store.deleted_since(2) is None  # deletions before this opening were not logged
        assert store.deleted_since(3) == set()
        with store.transaction():
            store.delete_object(ObjectKey("Pod", "dev", "p0"))
        assert store.deleted_since(3) == {ObjectKey("Pod", "dev", "p0")}


def test_placements_version_is_the_revision_that_last_wrote_a_placement(open_store: OpenStore) -> None:
    with open_store() as store:
        assert store.placements_version == 0
        with store.transaction():
            store.put_placement(Placement("a", "x", "h", "10.0.0.1"))
            store.put_placement(Placement("a", "y", "h", "10.0.0.2"))
        with store.transaction():  # no placement written: the version stays
            store.put_object(ObjectKey("Pod", "a", "x"), {"x": 1})
        assert (store.revision, store.placements_version) == (2, 1)
        with store.transaction():
            store.delete_placement("a", "y")
        assert store.placements_version == 3
    with open_store() as another:  # a reader in another process sees it
        assert another.placements_version == 3


def test_failed_transaction_changes_nothing(open_store: OpenStore) -> None:
    with open_store() as store:
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.put_object(ObjectKey("Pod", "dev", "web"), {"x": 1})
                store.claim_block("10.0.0.0/26", "node1")
                raise RuntimeError("boom")
        assert store.objects() == []
        assert store.ipam_blocks() == {}
        assert store.revision == 0


def test_unique_ips(open_store: OpenStore) -> None:
    with open_store() as store:
        with pytest.raises(StoreIntegrityError):
            with store.transaction():
                store.put_placement(Placement("a", "x", "h", "10.0.0.1"))
                store.put_placement(Placement("a", "y", "h", "10.0.0.1"))
        assert store.placements() == []
        with store.transaction():  # moving a pod to another address frees the old one
            store.put_placement(Placement("a", "x", "h", "10.0.0.1"))
        with store.transaction():
            store.put_placement(Placement("a", "x", "h", "10.0.0.2"))
            store.put_placement(Placement("a", "y", "h", "10.0.0.1"))
        assert {p.ip for p in store.placements()} == {"10.0.0.1", "10.0.0.2"}


def test_block_claim_is_compare_and_swap(open_store: OpenStore) -> None:
    with open_store() as one, open_store() as two:
        assert one.claim_block("10.0.0.0/26", "node1") == "node1"
        assert two.claim_block("10.0.0.0/26", "node2") == "node1"  # lost: the block stays node1's
        assert two.claim_block("10.0.0.64/26", "node2") == "node2"
        assert one.affinities() == {"node1": ["10.0.0.0/26"], "node2": ["10.0.0.64/26"]}


def test_a_stale_block_write_is_refused(open_store: OpenStore) -> None:
    with open_store() as one, open_store() as two:
        one.claim_block("10.0.0.0/26", "node1")
        seen = two.ipam_blocks()["10.0.0.0/26"]
        fresh = one.ipam_blocks()["10.0.0.0/26"]
        one.write_block(BlockRecord(fresh.cidr, "node1", {"10.0.0.0": {"handle": "a/x", "host": "node1"}}, fresh.version))
        with pytest.raises(StoreConflict):  # two read the block before one's write
            two.write_block(BlockRecord(seen.cidr, "node1", {"10.0.0.0": {"handle": "b/y", "host": "node1"}}, seen.version))
        with pytest.raises(StoreConflict):
            two.delete_block(seen.cidr, seen.version)
        assert one.ipam_blocks()["10.0.0.0/26"].addresses == {"10.0.0.0": {"handle": "a/x", "host": "node1"}}


def test_ipam_records_round_trip_as_blocks(open_store: OpenStore) -> None:
    records = {
        "blocks": [{"cidr": "10.0.0.0/26", "host": "node1"}, {"cidr": "10.0.0.64/26", "host": "node2"}],
        "addresses": [{"ip": "10.0.0.0", "handle": "dev/a", "host": "node1", "block": "10.0.0.0/26"},
                      {"ip": "10.0.0.1", "handle": "dev/b", "host": "node2", "block": "10.0.0.0/26"}],
    }
    with open_store() as store:
        assert store.get_ipam_records() is None
        with store.transaction():
            store.set_ipam_records(records)
        got = store.get_ipam_records()
        assert got is not None
        assert got["blocks"] == records["blocks"]
        assert sorted(got["addresses"], key=lambda a: a["ip"]) == records["addresses"]
        with store.transaction():  # the second block emptied and released: its affinity goes with it
            store.set_ipam_records({"blocks": records["blocks"][:1], "addresses": records["addresses"][:1]})
        assert store.affinities() == {"node1": ["10.0.0.0/26"]}


def test_watch_from_a_revision_sees_each_commit(open_store: OpenStore) -> None:
    seen: list[int] = []

    def follow() -> None:
        with open_store() as watching:
            seen.extend(watching.watch(0, timeout=3.0))

    with open_store() as store, open_store() as writer:
        watcher = threading.Thread(target=follow)
        watcher.start()
        for i in range(3):
            with writer.transaction():
                writer.put_object(ObjectKey("Pod", "dev", f"p{i}"), {})
        watcher.join(10)
        assert not watcher.is_alive()
        assert seen and seen[-1] == 3 and seen == sorted(set(seen))
        assert store.wait_revision(3, timeout=0.2) == 3  # nothing newer: returns at the timeout


def test_writers_are_serialised(open_store: OpenStore) -> None:
    """Read-modify-write in transactions from two clients at once loses no update."""

    failures: list[BaseException] = []

    def bump(n: int) -> None:
        try:
            with open_store() as store:
                for _ in range(n):
                    with store.transaction():
                        store.set_meta("counter", store.get_meta("counter", 0) + 1)
        except BaseException as exc:  # a thread's exception would otherwise only show as a lower count
            failures.append(exc)

    threads = [threading.Thread(target=bump, args=(15,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with open_store() as store:
        assert store.get_meta("counter") == 30
        assert store.revision == 30


def test_destroy_removes_every_record(open_store: OpenStore) -> None:
    store = open_store()
    with store.transaction():
        store.put_object(ObjectKey("Pod", "dev", "a"), {})
    store.destroy()
    with open_store() as again:
        assert again.objects() == [] and again.revision == 0


def test_objects_of_some_kinds_and_the_count(open_store: OpenStore) -> None:
    with open_store() as store:
        with store.transaction():
            for kind, name in (("Pod", "b"), ("Service", "s"), ("Pod", "a"), ("NetworkPolicy", "p")):
                store.put_object(ObjectKey(kind, "ns", name), {"kind": kind, "metadata": {"name": name}})
        assert [k.name for k, _ in store.objects(kinds=["Pod", "Service"])] == ["a", "b", "s"]
        assert [k.name for k, _ in store.objects(kinds=["Pod"])] == ["a", "b"]
        assert store.objects(kinds=[]) == []
        assert store.object_count() == 4 and len(store.objects()) == 4
