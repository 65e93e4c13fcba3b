import pytest

from lab.store import ObjectKey, Placement, Store


def test_objects_round_trip_and_revision(tmp_path):
    with Store(tmp_path / "s.db") as store:
        assert store.revision == 0
        with store.transaction():
            store.put_object(ObjectKey("Namespace", "", "dev"), {"metadata": {"name": "dev"}})
            store.put_placement(Placement("dev", "web", "node1", "192.168.0.1"))
        assert store.revision == 1
        assert store.get_object(ObjectKey("Namespace", "", "dev")) == {"metadata": {"name": "dev"}}
    with Store(tmp_path / "s.db") as again:  # survives the process: it is on disk
        assert again.revision == 1
        assert again.placements() == [Placement("dev", "web", "node1", "192.168.0.1")]


def test_failed_transaction_changes_nothing(tmp_path):
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.put_object(ObjectKey("Pod", "dev", "web"), {"x": 1})
                raise RuntimeError("boom")
        assert store.objects() == []
        assert store.revision == 0


def test_unique_ips(tmp_path):
    import sqlite3

    with Store(tmp_path / "s.db") as store:
        with pytest.raises(sqlite3.IntegrityError):
            with store.transaction():
                store.put_placement(Placement("a", "x", "h", "10.0.0.1"))
                store.put_placement(Placement("a", "y", "h", "10.0.0.1"))
        assert store.placements() == []


def test_objects_of_some_kinds_and_the_count(tmp_path):
    with Store(tmp_path / "s.db") as store:
        with store.transaction():
            for kind, name in (("Pod", "b"), ("Service", "s"), ("Pod", "a"), ("NetworkPolicy", "p")):
                store.put_object(ObjectKey(kind, "ns", name), {"kind": kind, "metadata": {"name": name}})
        assert [k.name for k, _ in store.objects(kinds=["Pod", "Service"])] == ["a", "b", "s"]
        assert [k.name for k, _ in store.objects(kinds=["Pod"])] == ["a", "b"]
        assert store.objects(kinds=[]) == []
        assert store.object_count() == 4 and len(store.objects()) == 4
