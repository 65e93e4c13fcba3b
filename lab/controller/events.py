"""What the controller did and why: one JSON object per line in `events.jsonl` in the lab's run directory.

A file, not the socket, so `lab events` works while the controller is down, and `--follow` is a tail.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from topology.names import LabPaths


@dataclass(frozen=True)
class Event:
    time: float
    kind: str  # "start", "repair", "sync", "failed", "stop"
    what: str  # the action: "restart", "reprogram", "recreate pods", ...
    reason: str
    seconds: float = 0.0
    host: str = ""

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time)) + f".{int(self.time % 1 * 1000):03d}"
        took = f" ({self.seconds * 1000:.0f} ms)" if self.seconds else ""
        return f"{stamp} {self.kind:7} {self.what}: {self.reason}{took}"


def events_file(paths: LabPaths) -> Path:
    return paths.config_file("events.jsonl")


def record(paths: LabPaths, event: Event) -> None:
    line = json.dumps(asdict(event), sort_keys=True) + "\n"
    fd = os.open(events_file(paths), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())  # one write with O_APPEND: lines never interleave
    finally:
        os.close(fd)


def _parse(line: str) -> Event | None:
    try:
        return Event(**json.loads(line))
    except (ValueError, TypeError):
        return None  # a line cut short by a crash


def read(paths: LabPaths) -> list[Event]:
    try:
        text = events_file(paths).read_text()
    except FileNotFoundError:
        return []
    return [e for line in text.splitlines() if (e := _parse(line)) is not None]


def follow(paths: LabPaths, poll: float = 0.2) -> Iterator[Event]:
    """Every event so far, then each new one as it is written (until the caller stops)."""
    path = events_file(paths)
    offset = 0
    pending = ""
    while True:
        try:
            with open(path) as handle:
                handle.seek(offset)
                chunk = handle.read()
                offset = handle.tell()
        except FileNotFoundError:
            chunk = ""
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            if (event := _parse(line)) is not None:
                yield event
        if not chunk:
            time.sleep(poll)
