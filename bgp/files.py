"""Run-time files of the BGP speakers and reflectors, all in the lab's run directory (names.LabPaths).

The speaker side (`speaker.py`) and the agent inside ExaBGP (`agent.py`) both derive paths from here, so
they agree without passing every path around. Writes are atomic (temp file + rename) because readers
(`lab bgp`, the agent on SIGHUP) may look at any moment.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topology.names import LabPaths


@dataclass(frozen=True)
class _RunFiles:
    run_dir: Path
    name: str

    def _at(self, program: str, suffix: str) -> Path:
        return self.run_dir / f"{program}-{self.name}.{suffix}"


@dataclass(frozen=True)
class SpeakerFiles(_RunFiles):
    @classmethod
    def of(cls, paths: LabPaths, name: str) -> SpeakerFiles:
        return cls(paths.run_dir, name)

    config = property(lambda self: self._at("exabgp", "conf"))
    log = property(lambda self: self._at("exabgp", "log"))
    pid = property(lambda self: self._at("exabgp", "pid"))
    agent_pid = property(lambda self: self._at("bgp-agent", "pid"))
    announcements = property(lambda self: self._at("bgp-announce", "json"))
    status = property(lambda self: self._at("bgp-status", "json"))


@dataclass(frozen=True)
class ReflectorFiles(_RunFiles):
    @classmethod
    def of(cls, paths: LabPaths, name: str) -> ReflectorFiles:
        return cls(paths.run_dir, name)

    config = property(lambda self: self._at("bird", "conf"))
    socket = property(lambda self: self._at("bird", "ctl"))
    pid = property(lambda self: self._at("bird", "pid"))
    log = property(lambda self: self._at("bird", "log"))


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it does not exist (yet) or is unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
