"""The bounded change log the incremental compiler follows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policy_dataplane.policy.changelog import ChangeLog


@given(st.lists(st.integers(0, 20), max_size=60), st.integers(1, 8), st.integers(0, 70))
def test_since_gives_every_key_from_there_on_or_none_when_forgotten(keys: list[int], limit: int, at: int) -> None:
    log = ChangeLog(limit=limit)
    for key in keys:
        log.add(key)
    assert log.end == len(keys)
    got = log.since(at)
    if at > len(keys):
        assert got is None  # a sequence number the log never gave
    elif got is not None:
        assert got == keys[at:]
    else:
        assert len(keys) - at > limit // 2  # only what the log had to drop is forgotten


def test_a_log_keeps_at_most_its_limit() -> None:
    log = ChangeLog(limit=10)
    for key in range(1000):
        log.add(key)
    assert log.since(995) == [995, 996, 997, 998, 999]
    assert log.since(0) is None
    assert len(log.since(log.end - 5) or []) == 5
