"""Selector -> members, kept up to date incrementally (cost proportional to the change).

Items are anything with labels (pods, network sets), known by a hashable key. Selectors are registered
with a reference count (many policies share one canonical selector). Three inverted indexes keep every
update local:

* a selector is filed under one label pair every match must carry (`required_pairs`), so a new item is
  only tested against selectors filed under its own pairs (plus the few with no such pair);
* a selector is filed under the (key, value) atoms, presence keys and any-change keys it reads
  (`index_atoms`), so a label change re-tests only selectors that read a changed key *and* whose result
  the change can flip;
* items are filed under their (key, value) pairs and under their keys, so a new selector's members come
  from those posting lists by set algebra (`has(k)`, `k == v`, `!`, `&&`, `||`, ...), in C, not by testing
  every item in Python; only string matches (`contains`, `starts with`, `ends with`) test items one by one.
  `!has(k)` over the bank's 1500 pods: 3.1 ms tested one by one, 0.9 ms from the lists (most of it the
  members' own bookkeeping).

Item operations return the membership changes they made. Registering or releasing a selector changes the
membership of each of its members, which `members` gives: it returns only how many (a list of 1500 change
records for a selector over the bank's pods cost ~1 ms, and nothing read it).
`memberships_from_scratch` recomputes everything the slow, obvious way, for the property tests.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, KeysView, Mapping
from collections.abc import Set as AbstractSet
from typing import NamedTuple, TypeVar

from policy_dataplane.policy.selectors import (
    NAMESPACE_LABEL,
    All,
    And,
    Eq,
    Expr,
    Global,
    Has,
    In,
    Ne,
    Not,
    NotIn,
    Or,
    Selector,
    index_atoms,
    required_pairs,
)

ItemKey = Hashable
K = TypeVar("K", bound=Hashable)


class MembershipChange(NamedTuple):  # a tuple: a new selector over the bank's 1500 pods makes 1500 of them
    selector_id: str
    item: ItemKey
    added: bool  # False: removed


def _pair_rank(pair: tuple[str, str]) -> tuple[int, str, str]:
    """Prefer user labels (most selective) over Calico's pseudo-labels when filing a selector."""
    key = pair[0]
    if key.startswith("projectcalico.org/"):
        return (2, key, pair[1])
    if key.startswith(("pcns.", "pcsa.")):
        return (1, key, pair[1])
    return (0, key, pair[1])


class LabelIndex:
    def __init__(self) -> None:
        self._labels: dict[ItemKey, Mapping[str, str]] = {}
        self._selectors: dict[str, Selector] = {}
        self._refs: dict[str, int] = {}
        self._members: dict[str, set[ItemKey]] = {}
        self._matches: dict[ItemKey, set[str]] = {}
        # selector filing
        self._filed_under: dict[str, tuple[str, str] | None] = {}
        self._keys: dict[str, frozenset[str]] = {}  # label keys each selector reads
        self._by_required: dict[tuple[str, str], set[str]] = {}
        self._unfiled: set[str] = set()
        self._by_value: dict[tuple[str, str], set[str]] = {}
        self._by_presence: dict[str, set[str]] = {}
        self._by_anychange: dict[str, set[str]] = {}
        # item filing
        self._items_by_pair: dict[tuple[str, str], set[ItemKey]] = {}
        self._items_by_key: dict[str, set[ItemKey]] = {}
        # how many (selector, item) tests the index has run: shows that work follows the change's size
        self.evaluations = 0
        self.selectors_version = 0  # moves whenever a selector is registered or unregistered

    # --- reading ---------------------------------------------------------------------------------------

    def members(self, selector_id: str) -> frozenset[ItemKey]:
        return frozenset(self._members.get(selector_id, ()))

    def members_view(self, selector_id: str) -> set[ItemKey]:
        """The live member set (do not modify); cheaper than `members` in hot loops."""
        return self._members.get(selector_id, set())

    def matches(self, item: ItemKey) -> frozenset[str]:
        """Ids of the registered selectors that select this item."""
        return frozenset(self._matches.get(item, ()))

    def matches_view(self, item: ItemKey) -> AbstractSet[str]:
        """The live set behind `matches` (do not modify, do not keep across changes)."""
        return self._matches.get(item, frozenset())

    def has_selector(self, selector_id: str) -> bool:
        return selector_id in self._refs

    def contains(self, selector_id: str, item: ItemKey) -> bool:
        return item in self._members.get(selector_id, ())

    def labels(self, item: ItemKey) -> Mapping[str, str] | None:
        return self._labels.get(item)

    def selector(self, selector_id: str) -> Selector:
        return self._selectors[selector_id]

    def selectors(self) -> dict[str, Selector]:
        return dict(self._selectors)

    def selector_ids(self) -> KeysView[str]:
        """The registered selectors' ids (a live view: do not keep it across changes)."""
        return self._selectors.keys()

    def items(self) -> dict[ItemKey, Mapping[str, str]]:
        return dict(self._labels)

    def snapshot(self) -> dict[str, frozenset[ItemKey]]:
        return {sid: frozenset(m) for sid, m in self._members.items()}

    # --- selectors -------------------------------------------------------------------------------------

    def add_selector(self, selector: Selector) -> int:
        """Register (or count one more user of) a selector; returns how many items joined it."""
        sid = selector.id
        if sid in self._refs:
            self._refs[sid] += 1
            return 0
        self._refs[sid] = 1
        self._selectors[sid] = selector
        self.selectors_version += 1
        self._file_selector(sid, selector)
        members = self._select(selector.expr)
        if members is None:  # string matches: each candidate tested
            pair = self._filed_under[sid]
            candidates: Iterable[ItemKey] = self._items_by_pair.get(pair, ()) if pair else self._labels
            candidates = list(candidates)
            self.evaluations += len(candidates)
            members = {item for item in candidates if selector.matches(self._labels[item])}
        self._members[sid] = members
        for item in members:
            self._matches.setdefault(item, set()).add(sid)
        return len(members)

    def remove_selector(self, selector: Selector) -> int:
        """Release one user of a selector; returns how many items left it (0 while others still use it)."""
        sid = selector.id
        if sid not in self._refs:
            return 0
        self._refs[sid] -= 1
        if self._refs[sid] > 0:
            return 0
        del self._refs[sid]
        self._unfile_selector(sid, self._selectors.pop(sid))
        self.selectors_version += 1
        members = self._members.pop(sid)
        for item in members:
            self._matches[item].discard(sid)
        return len(members)

    def _select(self, expr: Expr) -> set[ItemKey] | None:
        """The items `expr` selects, from the posting lists (a new set); None when it needs each item's labels."""
        if isinstance(expr, Eq):
            return set(self._items_by_pair.get((expr.key, expr.value), ()))
        if isinstance(expr, Has):
            return set(self._items_by_key.get(expr.key, ()))
        if isinstance(expr, In):
            return set().union(*(self._items_by_pair.get((expr.key, v), ()) for v in expr.values))
        if isinstance(expr, All):
            return set(self._labels)
        if isinstance(expr, Not):
            return self._complement(self._select(expr.operand))
        if isinstance(expr, Ne):
            return self._complement(self._select(Eq(expr.key, expr.value)))
        if isinstance(expr, NotIn):
            return self._complement(self._select(In(expr.key, expr.values)))
        if isinstance(expr, Global):
            return self._complement(self._select(Has(NAMESPACE_LABEL)))
        if isinstance(expr, (And, Or)):
            parts = [self._select(op) for op in expr.operands]
            known = [p for p in parts if p is not None]
            if isinstance(expr, Or):
                return None if len(known) < len(parts) else set().union(*known)
            if not known:
                return None
            chosen = set.intersection(*known)
            rest = [op for op, p in zip(expr.operands, parts, strict=True) if p is None]
            self.evaluations += len(chosen) * bool(rest)
            return {i for i in chosen if all(op.matches(self._labels[i]) for op in rest)} if rest else chosen
        return None

    def _complement(self, chosen: set[ItemKey] | None) -> set[ItemKey] | None:
        return None if chosen is None else self._labels.keys() - chosen

    def _file_selector(self, sid: str, selector: Selector) -> None:
        pairs = required_pairs(selector)
        pair = min(pairs, key=_pair_rank) if pairs else None
        self._filed_under[sid] = pair
        self._keys[sid] = selector.keys()
        if pair is None:
            self._unfiled.add(sid)
        else:
            self._by_required.setdefault(pair, set()).add(sid)
        values, presence, anychange = index_atoms(selector)
        for v in values:
            self._by_value.setdefault(v, set()).add(sid)
        for k in presence:
            self._by_presence.setdefault(k, set()).add(sid)
        for k in anychange:
            self._by_anychange.setdefault(k, set()).add(sid)

    def _unfile_selector(self, sid: str, selector: Selector) -> None:
        pair = self._filed_under.pop(sid)
        del self._keys[sid]
        if pair is None:
            self._unfiled.discard(sid)
        else:
            _discard(self._by_required, pair, sid)
        values, presence, anychange = index_atoms(selector)
        for v in values:
            _discard(self._by_value, v, sid)
        for k in presence:
            _discard(self._by_presence, k, sid)
        for k in anychange:
            _discard(self._by_anychange, k, sid)

    # --- items -----------------------------------------------------------------------------------------

    def set_item(self, item: ItemKey, labels: Mapping[str, str]) -> list[MembershipChange]:
        """Add an item or change its labels."""
        old = self._labels.get(item)
        if old is None:
            return self._add_item(item, labels)
        return self._relabel_item(item, old, labels)

    def _relabel_candidates(
        self, old: Mapping[str, str], new: Mapping[str, str], changed: set[str]
    ) -> set[str]:
        """Selectors whose result on the item may flip. Two supersets of them; the smaller one is used:
        by what the change touches (atoms of the changed keys), or by what the item carries (a selector
        that matched before or after must be filed under one of the item's old or new pairs)."""
        by_atoms: list[set[str]] = []
        for k in changed:
            before, after = old.get(k), new.get(k)
            for value in (before, after):
                if value is not None and (k, value) in self._by_value:
                    by_atoms.append(self._by_value[(k, value)])
            if (before is None or after is None) and k in self._by_presence:
                by_atoms.append(self._by_presence[k])
            if k in self._by_anychange:
                by_atoms.append(self._by_anychange[k])
        by_pairs = [self._by_required[p] for p in set(old.items()) | set(new.items()) if p in self._by_required]
        if sum(map(len, by_atoms)) <= len(self._unfiled) + sum(map(len, by_pairs)):
            return set().union(*by_atoms)
        keys = self._keys
        return {sid for sid in set(self._unfiled).union(*by_pairs) if keys[sid] & changed}

    def remove_item(self, item: ItemKey) -> list[MembershipChange]:
        labels = self._labels.pop(item, None)
        if labels is None:
            return []
        for pair in labels.items():
            _discard(self._items_by_pair, pair, item)
            _discard(self._items_by_key, pair[0], item)
        changes = []
        for sid in self._matches.pop(item, set()):
            self._members[sid].discard(item)
            changes.append(MembershipChange(sid, item, False))
        return changes

    def _add_item(self, item: ItemKey, labels: Mapping[str, str]) -> list[MembershipChange]:
        self._labels[item] = labels
        candidates = set(self._unfiled)
        for pair in labels.items():
            self._items_by_pair.setdefault(pair, set()).add(item)
            self._items_by_key.setdefault(pair[0], set()).add(item)
            candidates.update(self._by_required.get(pair, ()))
        self.evaluations += len(candidates)
        matched = {sid for sid in candidates if self._selectors[sid].matches(labels)}
        self._matches[item] = matched
        for sid in matched:
            self._members[sid].add(item)
        return [MembershipChange(sid, item, True) for sid in matched]

    def _relabel_item(self, item: ItemKey, old: Mapping[str, str], new: Mapping[str, str]) -> list[MembershipChange]:
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        if not changed:
            self._labels[item] = new
            return []
        candidates = self._relabel_candidates(old, new, changed)
        for k in changed:
            before, after = old.get(k), new.get(k)
            if before is not None:
                _discard(self._items_by_pair, (k, before), item)
            if after is not None:
                self._items_by_pair.setdefault((k, after), set()).add(item)
            if before is None:
                self._items_by_key.setdefault(k, set()).add(item)
            elif after is None:
                _discard(self._items_by_key, k, item)
        self._labels[item] = new
        matched = self._matches.setdefault(item, set())
        changes = []
        self.evaluations += len(candidates)
        for sid in candidates:
            now = self._selectors[sid].matches(new)
            if now and sid not in matched:
                matched.add(sid)
                self._members[sid].add(item)
                changes.append(MembershipChange(sid, item, True))
            elif not now and sid in matched:
                matched.discard(sid)
                self._members[sid].discard(item)
                changes.append(MembershipChange(sid, item, False))
        return changes


def _discard(index: dict, key: object, value: object) -> None:  # type: ignore[type-arg]
    bucket = index.get(key)
    if bucket is not None:
        bucket.discard(value)
        if not bucket:
            del index[key]


def memberships_from_scratch(
    items: Mapping[K, Mapping[str, str]], selectors: Iterable[Selector]
) -> dict[str, frozenset[K]]:
    """Every selector against every item: the reference the incremental index must always equal."""
    return {s.id: frozenset(i for i, labels in items.items() if s.matches(labels)) for s in selectors}


__all__ = ["ItemKey", "LabelIndex", "MembershipChange", "memberships_from_scratch"]
