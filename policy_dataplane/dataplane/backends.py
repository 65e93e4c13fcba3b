"""The dataplane backends by name: a lab file's `dataplane`, `Dataplane(lab, backend=name)`. A new backend is
its folder plus one `register_backend` line at the end of this file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from policy_dataplane.dataplane.backend import Backend
from policy_dataplane.dataplane.fake.backend import FakeBackend
from policy_dataplane.dataplane.iptables.backend import IptablesBackend
from policy_dataplane.dataplane.nft.backend import NftablesBackend
from policy_dataplane.dataplane.nofilter import NoFilterBackend


@dataclass(frozen=True)
class Registration:
    factory: Callable[[], Backend]
    for_labs: bool  # False: lives in one process only (the fake), so a lab file cannot ask for it


_BACKENDS: dict[str, Registration] = {}


def register_backend(name: str, factory: Callable[[], Backend], for_labs: bool = True) -> None:
    _BACKENDS[name] = Registration(factory, for_labs)


def get_backend(name: str) -> Backend:
    if name not in _BACKENDS:
        raise ValueError(f"unknown dataplane backend {name!r} ({' or '.join(sorted(_BACKENDS))})")
    return _BACKENDS[name].factory()


def backend_names(for_labs: bool = False) -> list[str]:
    """Every registered backend (only those a lab file may name, with `for_labs`)."""
    return sorted(n for n, r in _BACKENDS.items() if r.for_labs or not for_labs)


register_backend("nftables", NftablesBackend)
register_backend("iptables", IptablesBackend)
register_backend("none", NoFilterBackend)  # no filter at all: the floor benchmarks compare against
register_backend("fake", FakeBackend, for_labs=False)  # in one process's memory: unit tests, no kernel

__all__ = ["backend_names", "get_backend", "register_backend"]
