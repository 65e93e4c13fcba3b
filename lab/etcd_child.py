"""A throwaway etcd for tests and benchmarks: a child process on free loopback ports, ended by its pid.

Debian's etcd-server may run a system etcd on 2379/2380; this one never uses those ports, keeps its data
in a temporary folder, and allows the large transactions a lab's first write needs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

ETCD = "etcd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_etcd(timeout: float = 30.0) -> Iterator[str]:
    """Yields the client endpoint (http://127.0.0.1:PORT) of a fresh etcd; stops it and removes its data."""
    if shutil.which(ETCD) is None:
        raise RuntimeError("etcd is not installed: run ./scripts/bootstrap (it installs etcd-server)")
    client, peer = _free_port(), _free_port()
    data = tempfile.mkdtemp(prefix="nl-etcd-")
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    argv = [ETCD, "--name", "t", "--data-dir", data, "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"t={peer_url}", "--max-txn-ops", "100000", "--max-request-bytes", "67108864",
            "--log-level", "warn"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:  # noqa: S310 (our loopback etcd)
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
