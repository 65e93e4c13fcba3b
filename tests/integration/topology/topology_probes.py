"""Real kernel connections from inside a namespace: accepted, refused (both mean reached) or silence."""

from __future__ import annotations

import json
import socket
import subprocess
from ipaddress import IPv4Address

from topology import netns

TIMEOUT = 1.0


def _socket(name: str, kind: int) -> socket.socket:
    with netns.entered(name):
        return socket.socket(socket.AF_INET, kind)


def tcp(name: str, ip: IPv4Address | str, port: int, timeout: float = TIMEOUT) -> str:
    """'accepted' (and echoed), 'refused', or 'silent' when nothing came back within the timeout."""
    sock = _socket(name, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((str(ip), port))
        sock.sendall(b"ping\n")
        return "accepted" if sock.recv(16) == b"ping\n" else "accepted-no-echo"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "silent"
    finally:
        sock.close()


def udp(name: str, ip: IPv4Address | str, port: int, timeout: float = TIMEOUT) -> str:
    sock = _socket(name, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.sendto(b"hello", (str(ip), port))
        return "echoed" if sock.recv(16) == b"hello" else "garbled"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "silent"
    finally:
        sock.close()


def ip_json(name: str | None, *args: str) -> list[dict]:  # type: ignore[type-arg]
    argv = ["ip", "-j"] + (["-n", name] if name else []) + list(args)
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout or "[]")


def add_route(name: str, dst: str, via: str) -> None:
    subprocess.run(["ip", "-n", name, "route", "add", dst, "via", via], check=True)


def read_sysctl(name: str, key: str) -> str:
    with netns.entered(name):
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            return f.read().strip()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] not in ("Z", "X")
    except OSError:
        return False
