"""A bounded log of the keys a table changed, so that a consumer that follows it (the incremental compiler)
looks only at what changed since it last looked, not at every pod and policy of the world.

Each change appends the key; a consumer remembers `end` and later asks `since(end)`. Only the last
`limit` entries are kept: a consumer that fell further behind gets None and compares everything.
"""

from __future__ import annotations

from collections.abc import Hashable


class ChangeLog:
    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._keys: list[Hashable] = []
        self._start = 0  # the sequence number of self._keys[0]

    @property
    def end(self) -> int:
        """The sequence number the next change will get."""
        return self._start + len(self._keys)

    def add(self, key: Hashable) -> None:
        self._keys.append(key)
        if len(self._keys) > self._limit:
            dropped = len(self._keys) // 2
            del self._keys[:dropped]
            self._start += dropped

    def since(self, sequence: int) -> list[Hashable] | None:
        """The keys changed from `sequence` on (repeats included); None when they are no longer all known."""
        if sequence < self._start or sequence > self.end:
            return None
        return self._keys[sequence - self._start:]


__all__ = ["ChangeLog"]
