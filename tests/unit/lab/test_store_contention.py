"""Two processes write one store at once (as two machines' controllers would): block claims are
compare-and-swap, and 200 pods added from both sides never share an address. Both backends."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bgp.ipam import Ipam, IpamConfig
from lab.labfile import LabSpecModel
from tests.store_worker import open_store as _open

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["sqlite", "etcd"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(backend, where) of a fresh store the workers and the test open."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "s.db")
    return "etcd", f"{request.getfixturevalue('etcd_endpoint')}|/netpol-lab-test/contention-{tmp_path.name}/"


def _race(tmp_path: Path, backend: str, where: str, jobs: list[list[str]]) -> list[object]:
    """Start every worker, let them go at the same instant, and return what each printed."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-m", "tests.store_worker", job[0], backend, where, str(go), *job[1:]],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for job in jobs]
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    return results


def test_concurrent_block_claims_have_one_winner(tmp_path: Path, shared: tuple[str, str]) -> None:
    backend, where = shared
    one, two = _race(tmp_path, backend, where, [["claim", "node1", "40"], ["claim", "node2", "40"]])
    assert one == two  # both processes agree on every block's owner, whoever won it
    with _open(backend, where) as store:
        stored = {cidr: b.host for cidr, b in store.ipam_blocks().items()}
    assert stored == one
    assert set(stored.values()) <= {"node1", "node2"} and len(stored) == 40


def test_two_sides_add_200_pods_and_no_address_is_given_twice(tmp_path: Path, shared: tuple[str, str]) -> None:
    backend, where = shared
    model = LabSpecModel.model_validate({"name": "race", "hosts": [{"name": n} for n in ("hosta", "hostb", "nodea", "nodeb")]})
    with _open(backend, where) as store:
        with store.transaction():
            store.set_meta("spec", model.model_dump(mode="json"))
    got_a, got_b = _race(tmp_path, backend, where, [["pods", "race", "a", "100"], ["pods", "race", "b", "100"]])
    given = [*got_a, *got_b]  # type: ignore[misc]
    assert len(given) == 200
    assert [ip for ip, n in Counter(given).items() if n > 1] == []
    with _open(backend, where) as store:
        placements = store.placements()
        records = store.get_ipam_records()
        blocks = store.ipam_blocks()
    assert len(placements) == 200 and len({p.ip for p in placements}) == 200
    assert sorted(p.ip for p in placements) == sorted(given)  # type: ignore[type-var]
    cfg = model.ipam
    ipam = Ipam.from_records(IpamConfig(cfg.pool, cfg.blockSize, cfg.maxBlocksPerHost, cfg.strictAffinity), records or {})
    assert len(ipam.allocations()) == 200  # from_records refuses an address or a handle recorded twice
    for block in blocks.values():  # each side's pods sit in blocks affine to its own hosts
        assert all(a["host"] == block.host for a in block.addresses.values())
