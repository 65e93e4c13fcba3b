"""The controller's Unix socket: one JSON request per line, one JSON answer per line.

    {"op": "ping"}                              -> {"ok": true, "pid": 123, "revision": 7}
    {"op": "status"}                            -> {"ok": true, "hosts": {...}, "processes": [...], ...}
    {"op": "wait", "revision": 7, "timeout": 30} -> {"ok": true} once every host is programmed at >= 7,
                                                   or {"ok": false, "error": "node2: ..."} at the timeout
    {"op": "resync"}                            -> {"ok": true} after one reconcile pass
    {"op": "programs"}                          -> {"ok": true, "programs": {host: digest of its program}}
    {"op": "show", "command": "status", ...}    -> {"ok": true, "stdout": "...", "stderr": "...", "exit": 0}
                                                   (a read command's output: lab/controller/show.py)

The socket lives in the lab's run directory, owned by root, mode 0600. Unix socket paths are limited to
108 bytes; a longer one (deep test directories) is reached through /proc/self/fd/<dir fd>/<name>.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SUN_PATH_MAX = 100


class ControllerUnavailable(ConnectionError):
    """No controller answers on the lab's socket."""


@contextmanager
def short_path(path: Path) -> Iterator[str]:
    """A path to `path` short enough for a Unix socket address."""
    if len(str(path)) <= SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def listen(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600: no moment when others could connect
    try:
        with short_path(path) as address:
            server.bind(address)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    server.listen(16)
    return server


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, sort_keys=True).encode() + b"\n"


def request(path: Path, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request and return the answer; ControllerUnavailable when nobody listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            with short_path(path) as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControllerUnavailable(f"no controller answers on {path}: {exc.strerror}") from None
        sock.sendall(encode(message))
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                raise ControllerUnavailable(f"the controller on {path} did not answer within {timeout:.0f} s") from None
            if not chunk:
                raise ControllerUnavailable(f"the controller on {path} closed the connection")
            data += chunk
    finally:
        sock.close()
    answer: dict[str, Any] = json.loads(data)
    return answer
