"""The topology engines by name: a lab file's `engine`, `get_engine(name)` for everyone who enters a
namespace. A new engine is its module plus one `register_engine` line at the end of this file."""

from __future__ import annotations

from collections.abc import Callable

from topology.engine import Engine, NetnsEngine
from topology.mininet_engine import MininetEngine

DEFAULT_ENGINE = "netns"
_ENGINES: dict[str, Callable[[], Engine]] = {}


def register_engine(name: str, factory: Callable[[], Engine]) -> None:
    _ENGINES[name] = factory


def get_engine(name: str = DEFAULT_ENGINE) -> Engine:
    if name not in _ENGINES:
        raise ValueError(f"unknown topology engine {name!r} ({' or '.join(sorted(_ENGINES))})")
    return _ENGINES[name]()


def engine_names() -> list[str]:
    return sorted(_ENGINES)


register_engine("netns", NetnsEngine)
register_engine("mininet", MininetEngine)

__all__ = ["DEFAULT_ENGINE", "engine_names", "get_engine", "register_engine"]
