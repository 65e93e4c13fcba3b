"""The probe engine raises the soft open-file limit (1024 on Debian) to what a large lab's sockets need."""

from __future__ import annotations

import pytest

from traffic import probes


@pytest.mark.parametrize(("soft", "hard", "sockets", "wanted"), [
    (1024, 1_048_576, 4500, 4756),  # raised to what is needed
    (1024, 3000, 4500, 3000),  # no further than the hard limit
    (65536, 1_048_576, 4500, None),  # enough already: left alone
])
def test_soft_file_limit_follows_the_sockets(monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, sockets: int,
                                             wanted: int | None) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(probes.resource, "getrlimit", lambda _: (soft, hard))
    monkeypatch.setattr(probes.resource, "setrlimit", lambda _, limits: calls.append(limits))
    probes._allow_files(sockets)
    assert calls == ([] if wanted is None else [(wanted, hard)])
