"""Where pods run: a pinned pod on its host, the others on the least-loaded host (ties: host order).

Pure and below the lab file: its validation counts pods per host with it, and the planner places them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping


def least_loaded_host(hosts: list[str], load: Mapping[str, int]) -> str:
    """The host a new unpinned pod goes to: the least loaded, ties broken by host order."""
    return min(hosts, key=lambda h: (load.get(h, 0), hosts.index(h)))


def choose_hosts(hosts: list[str], pinned: Iterable[str | None], load: Mapping[str, int] | None = None) -> list[str]:
    """The host of each pod in turn, given the host it is pinned to (None: any), counting `load` pods already
    placed."""
    counts: Counter[str] = Counter(load or {})
    chosen = []
    for pin in pinned:
        host = pin or least_loaded_host(hosts, counts)
        counts[host] += 1
        chosen.append(host)
    return chosen
