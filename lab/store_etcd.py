"""The `etcd` store backend: etcd 3 shared by every machine of a lab, through its gRPC gateway (etcd3gw).

Keys live under `/netpol-lab/<prefix>-<lab>/` (so `lab down` removes exactly the lab's), laid out like
Calico's: `meta/<key>`, `objects/<kind>/<namespace or ->/<name>`, `placements/<ns>/<name>` with an index
`placement-ip/<ip>`, `ipam/v2/block/<cidr>` and the affinity `ipam/v2/host/<host>/block/<cidr>`.

A transaction holds the lab's lock (a key bound to a lease) so writers are serialised as with SQLite,
buffers its writes (reads inside see them), and commits them as ONE etcd transaction guarded by
compare-and-swaps: the lock is still ours, the revision key is as read, every block written is at the
version read (or absent, for a claim). A lost compare raises StoreConflict and nothing is written.

Etcd's defaults allow 128 operations and 1.5 MiB per transaction; a lab's first transaction writes every
pod, so the etcd a lab uses should run with `--max-txn-ops` and `--max-request-bytes` raised (the tests'
etcd does).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import etcd3gw
from etcd3gw import exceptions as etcd_errors
from etcd3gw.lease import Lease

from lab.store import (
    BlockRecord,
    ObjectKey,
    Placement,
    Store,
    StoreConflict,
    StoreError,
    StoreIntegrityError,
    parse_endpoint,
)

API_PATH = "/v3/"  # etcd 3.4's gateway; etcd3gw would otherwise guess (its old default, /v3alpha/, is gone)
LOCK_TTL = 60  # seconds: a writer that dies frees the lab after this
LOCK_WAIT = 120.0
CLUSTER = "-"  # the namespace segment of cluster-scoped objects (never a valid namespace name)

Kv = tuple[bytes, int]  # value and mod revision (-1: written by the open transaction)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdStore(Store):
    backend = "etcd"

    def __init__(self, endpoints: list[str], root: str, timeout: float = 10.0):
        if not endpoints:
            raise StoreError("etcd store: no endpoint given")
        self.endpoints = list(endpoints)
        self.root = root.rstrip("/") + "/"
        self._client = self._connect(timeout)
        self._pending: dict[str, bytes | None] | None = None  # the open transaction's writes (None: delete)
        self._compares: dict[str, dict[str, Any]] = {}

    def _connect(self, timeout: float) -> etcd3gw.Etcd3Client:
        problems = []
        for endpoint in self.endpoints:
            protocol, host, port = parse_endpoint(endpoint)
            client = etcd3gw.Etcd3Client(host=host, port=port, protocol=protocol, api_path=API_PATH, timeout=timeout)
            try:
                client.status()
                return client
            except (etcd_errors.Etcd3Exception, OSError) as exc:
                problems.append(f"{endpoint}: {exc.__class__.__name__} {exc}")
        raise StoreError("etcd store: no endpoint answers: " + "; ".join(problems))

    def close(self) -> None:
        self._client.session.close()

    def destroy(self) -> None:
        self._client.delete_prefix(self.root)
        self.close()

    # raw keys with the open transaction's writes on top --------------------------------------------
    def _get(self, key: str) -> Kv | None:
        full = self.root + key
        if self._pending is not None and full in self._pending:
            value = self._pending[full]
            return None if value is None else (value, -1)
        found = self._client.get(full, metadata=True)
        if not found:
            return None
        value, meta = found[0]  # type: ignore[misc]
        return value, int(meta["mod_revision"])

    def _range(self, prefix: str) -> dict[str, Kv]:
        full = self.root + prefix
        out = {meta["key"].decode(): (value, int(meta["mod_revision"])) for value, meta in self._client.get_prefix(full)}
        for key, pending in (self._pending or {}).items():
            if key.startswith(full):
                if pending is None:
                    out.pop(key, None)
                else:
                    out[key] = (pending, -1)
        return out

    def _write(self, key: str, value: bytes | None, compare: dict[str, Any] | None = None) -> None:
        """Buffer in the open transaction, or write at once (one etcd transaction) outside one."""
        full = self.root + key
        if self._pending is not None:
            self._pending[full] = value
            if compare is not None:
                self._compares.setdefault(full, compare)  # the first read of a key is what was compared
            return
        self._commit({full: value}, [compare] if compare else [], what=key)

    def _commit(self, writes: dict[str, bytes | None], compares: list[dict[str, Any]], what: str) -> None:
        ops = [
            {"request_delete_range": {"key": _b64(k)}} if v is None
            else {"request_put": {"key": _b64(k), "value": base64.b64encode(v).decode()}}
            for k, v in writes.items()
        ]
        try:
            answer = self._client.transaction({"compare": compares, "success": ops, "failure": []})
        except etcd_errors.Etcd3Exception as exc:
            raise StoreError(f"etcd store {self.endpoints}: writing {what} failed: {exc}") from None
        if not answer.get("succeeded"):  # the gateway leaves `false` out
            raise StoreConflict(f"etcd store {self.endpoints}: {what}: another writer changed it first")

    @staticmethod
    def _version_is(key: str, version: int) -> dict[str, Any]:
        if version == 0:
            return {"key": _b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": 0}
        return {"key": _b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": version}

    # transactions ---------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["EtcdStore"]:
        if self._pending is not None:
            raise StoreError("etcd store: transactions do not nest")
        lock_key, owner, lease = self._lock()
        try:
            self._pending, self._compares = {}, {}
            revision = self._get("meta/revision")
            self._compares[self.root + "meta/revision"] = self._version_is(
                self.root + "meta/revision", revision[1] if revision else 0)
            yield self
            self._bump_revision()
            still_ours = {"key": _b64(lock_key), "result": "EQUAL", "target": "VALUE", "value": _b64(owner)}
            pending, compares = self._pending, [still_ours, *self._compares.values()]
            self._pending = None
            self._commit(pending, compares, what="transaction")
        finally:
            self._pending, self._compares = None, {}
            lease.revoke()  # the lock key is bound to this lease alone: revoking it unlocks

    def _lock(self) -> tuple[str, str, Lease]:
        key, owner = self.root + "lock", uuid.uuid4().hex
        lease = self._client.lease(LOCK_TTL)
        put = {"request_put": {"key": _b64(key), "value": _b64(owner), "lease": lease.id}}
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            answer = self._client.transaction({"compare": [self._version_is(key, 0)], "success": [put], "failure": []})
            if answer.get("succeeded"):
                return key, owner, lease
            if time.monotonic() > deadline:
                lease.revoke()
                raise StoreError(f"etcd store {self.endpoints}: the lab stayed locked for {LOCK_WAIT:.0f} s")
            time.sleep(0.01)

    # meta -----------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        found = self._get(f"meta/{key}")
        return json.loads(found[0]) if found else default

    def set_meta(self, key: str, value: Any) -> None:
        self._write(f"meta/{key}", json.dumps(value, sort_keys=True).encode())

    # objects --------------------------------------------------------------------------------------
    @staticmethod
    def _object_key(key: ObjectKey) -> str:
        return f"objects/{key.kind}/{key.namespace or CLUSTER}/{key.name}"

    def put_object(self, key: ObjectKey, doc: dict[str, Any]) -> None:
        record = {"doc": doc, "revision": self.revision + 1}
        self._write(self._object_key(key), json.dumps(record, sort_keys=True).encode())

    def delete_object(self, key: ObjectKey) -> bool:
        if self._get(self._object_key(key)) is None:
            return False
        self._write(self._object_key(key), None)
        return True

    def get_object(self, key: ObjectKey) -> dict[str, Any] | None:
        found = self._get(self._object_key(key))
        return json.loads(found[0])["doc"] if found else None

    def _all_objects(self) -> list[tuple[ObjectKey, dict[str, Any], int]]:
        out = []
        for full, (value, _) in self._range("objects/").items():
            kind, namespace, name = full[len(self.root) + len("objects/"):].split("/")
            record = json.loads(value)
            out.append((ObjectKey(kind, "" if namespace == CLUSTER else namespace, name), record["doc"], record["revision"]))
        return sorted(out, key=lambda item: (item[0].kind, item[0].namespace, item[0].name))

    # placements -----------------------------------------------------------------------------------
    def put_placement(self, placement: Placement) -> None:
        self._placement_written()
        holder = self._get(f"placement-ip/{placement.ip}")
        me = f"{placement.namespace}/{placement.name}"
        if holder is not None and holder[0].decode() != me:
            raise StoreIntegrityError(f"etcd store {self.endpoints}: address {placement.ip} of pod {me} is already "
                                      f"placed ({holder[0].decode()})")
        old = self._get(f"placements/{me}")
        if old is not None and json.loads(old[0])["ip"] != placement.ip:
            self._write(f"placement-ip/{json.loads(old[0])['ip']}", None)
        self._write(f"placement-ip/{placement.ip}", me.encode())
        self._write(f"placements/{me}", json.dumps({"host": placement.host, "ip": placement.ip}).encode())

    def delete_placement(self, namespace: str, name: str) -> None:
        old = self._get(f"placements/{namespace}/{name}")
        if old is None:
            return
        self._placement_written()
        self._write(f"placement-ip/{json.loads(old[0])['ip']}", None)
        self._write(f"placements/{namespace}/{name}", None)

    def placements(self) -> list[Placement]:
        out = []
        for full, (value, _) in self._range("placements/").items():
            namespace, name = full[len(self.root) + len("placements/"):].split("/")
            record = json.loads(value)
            out.append(Placement(namespace, name, record["host"], record["ip"]))
        return sorted(out, key=lambda p: (p.namespace, p.name))

    # ipam -----------------------------------------------------------------------------------------
    @staticmethod
    def _block_key(cidr: str) -> str:
        return f"ipam/v2/block/{cidr.replace('/', '-')}"

    @staticmethod
    def _affinity_key(host: str, cidr: str) -> str:
        return f"ipam/v2/host/{host}/block/{cidr.replace('/', '-')}"

    def ipam_blocks(self) -> dict[str, BlockRecord]:
        out = {}
        for value, version in self._range("ipam/v2/block/").values():
            doc = json.loads(value)
            out[doc["cidr"]] = BlockRecord(doc["cidr"], doc["host"], doc["addresses"], version)
        return out

    def _put_block(self, block: BlockRecord, old_host: str | None) -> None:
        doc = {"cidr": block.cidr, "host": block.host, "addresses": block.addresses}
        writes: dict[str, bytes | None] = {self._block_key(block.cidr): json.dumps(doc, sort_keys=True).encode()}
        if old_host is not None and old_host != block.host:
            writes[self._affinity_key(old_host, block.cidr)] = None
        writes[self._affinity_key(block.host, block.cidr)] = b"confirmed"
        compare = None if block.version == -1 else self._version_is(self.root + self._block_key(block.cidr), block.version)
        if self._pending is not None:
            for key, value in writes.items():
                self._write(key, value, compare=compare if key == self._block_key(block.cidr) else None)
        else:
            self._commit({self.root + k: v for k, v in writes.items()}, [compare] if compare else [],
                         what=f"block {block.cidr}")

    def claim_block(self, cidr: str, host: str) -> str:
        found = self._get(self._block_key(cidr))
        if found is not None:
            return str(json.loads(found[0])["host"])
        try:
            self._put_block(BlockRecord(cidr, host, {}, 0), None)
        except StoreConflict:  # another machine claimed it between our read and our write
            found = self._get(self._block_key(cidr))
            if found is None:
                raise
            return str(json.loads(found[0])["host"])
        return host

    def write_block(self, block: BlockRecord) -> None:
        found = self._get(self._block_key(block.cidr))
        if found is not None and found[1] == -1:  # claimed or written by this transaction: compared already
            block = BlockRecord(block.cidr, block.host, block.addresses, -1)
        elif (found[1] if found else 0) != block.version and self._pending is None:
            raise StoreConflict(f"etcd store {self.endpoints}: block {block.cidr} changed since version {block.version}")
        old_host = json.loads(found[0])["host"] if found else None
        self._put_block(block, old_host)

    def delete_block(self, cidr: str, version: int) -> None:
        found = self._get(self._block_key(cidr))
        if found is None:
            raise StoreConflict(f"etcd store {self.endpoints}: block {cidr} is gone")
        host = json.loads(found[0])["host"]
        compare = None if found[1] == -1 else self._version_is(self.root + self._block_key(cidr), version)
        if self._pending is not None:
            self._write(self._block_key(cidr), None, compare=compare)
            self._write(self._affinity_key(host, cidr), None)
        else:
            self._commit({self.root + self._block_key(cidr): None, self.root + self._affinity_key(host, cidr): None},
                         [compare] if compare else [], what=f"block {cidr}")

    # watch ----------------------------------------------------------------------------------------
    def wait_revision(self, after: int, timeout: float) -> int:
        """etcd's watch on the revision key, from the revision that last wrote it: no change is missed."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._get("meta/revision")
            revision = int(json.loads(found[0])) if found else 0
            remaining = deadline - time.monotonic()
            if revision > after or remaining <= 0:
                return revision
            start = found[1] + 1 if found else None
            try:
                self._client.watch_once(self.root + "meta/revision", timeout=remaining, start_revision=start)
            except etcd_errors.WatchTimedOut:
                pass
