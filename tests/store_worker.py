"""A second (third...) process writing one store at once with the test: `python -m tests.store_worker`.

claim  BACKEND WHERE HOST N       claim blocks 0..N-1 of 10.200.0.0/16 by compare-and-swap, print the winners
pods   BACKEND WHERE LAB SIDE N   add N pods on the SIDE's hosts, one transaction each, through the lab's IPAM
(WHERE: the SQLite file, or `endpoint|key root` for etcd). Starts writing when the file GO exists.
"""

from __future__ import annotations

import json
import sys
import time
from ipaddress import IPv4Network
from pathlib import Path

from lab.store import ObjectKey, Store
from lab.store_etcd import EtcdStore
from lab.store_sqlite import SqliteStore


def open_store(backend: str, where: str) -> Store:
    if backend == "sqlite":
        return SqliteStore(Path(where))
    endpoint, root = where.split("|")
    return EtcdStore([endpoint], root)


def wait_for_go(go: Path) -> None:
    while not go.exists():
        time.sleep(0.005)


def claim(store: Store, host: str, count: int) -> dict[str, str]:
    blocks = list(IPv4Network("10.200.0.0/16").subnets(new_prefix=26))[:count]
    return {str(b): store.claim_block(str(b), host) for b in blocks}


def add_pods(store: Store, lab: str, side: str, count: int) -> list[str]:
    from lab.addresses import assign_addresses
    from lab.runtime import LabRuntime

    runtime = LabRuntime(lab, store=store)
    hosts = [h for h in runtime.host_names() if h.endswith(side)]
    ips = []
    for i in range(count):
        name, host = f"p{side}-{i}", hosts[i % len(hosts)]
        with store.transaction():
            store.put_object(ObjectKey("Pod", "dev", name), {"spec": {"nodeName": host}})
            ips += [str(ip) for ip in assign_addresses(runtime, [("dev", name, host, None)])]
    return ips


def main(argv: list[str]) -> None:
    what, backend, where, go = argv[:4]
    with open_store(backend, where) as store:
        wait_for_go(Path(go))
        if what == "claim":
            print(json.dumps(claim(store, argv[4], int(argv[5]))))
        else:
            print(json.dumps(add_pods(store, argv[4], argv[5], int(argv[6]))))


if __name__ == "__main__":
    main(sys.argv[1:])
