"""Real kernel connections from inside a namespace: accepted, refused (both mean reached) or silence."""

from __future__ import annotations

import json
import socket
import subprocess
from ipaddress import IPv4Address

from topology import netns

TIMEOUT = 3.0  # generous for answers under load; "silent" checks pass their own short timeout


def _socket(name: str, kind: int) -> socket.socket:
    with netns.entered(name):
        return socket.socket(socket.AF_INET, kind)


def _exchange(name: str, kind: int, ip: IPv4Address | str, port: int, payload: bytes, timeout: float) -> str:
    sock = _socket(name, kind)
    sock.settimeout(timeout)
    try:
        if kind == socket.SOCK_STREAM:
            sock.connect((str(ip), port))
            sock.sendall(payload)
        else:
            sock.sendto(payload, (str(ip), port))
        return "answered" if sock.recv(64) == payload else "garbled"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "silent"
    finally:
        sock.close()


def tcp(name: str, ip: IPv4Address | str, port: int, timeout: float = TIMEOUT) -> str:
    """'accepted' (and echoed), 'refused', or 'silent' when nothing came back within the timeout."""
    result = _exchange(name, socket.SOCK_STREAM, ip, port, b"ping\n", timeout)
    return "accepted" if result == "answered" else result


def udp(name: str, ip: IPv4Address | str, port: int, timeout: float = TIMEOUT) -> str:
    """'echoed', 'refused' (ICMP port unreachable) or 'silent'."""
    result = _exchange(name, socket.SOCK_DGRAM, ip, port, b"hello", timeout)
    return "echoed" if result == "answered" else result


def ip_json(name: str | None, *args: str) -> list[dict]:  # type: ignore[type-arg]
    argv = ["ip", "-j"] + (["-n", name] if name else []) + list(args)
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout or "[]")


def add_route(name: str, dst: str, via: str) -> None:
    subprocess.run(["ip", "-n", name, "route", "add", dst, "via", via], check=True)


def read_sysctl(name: str, key: str) -> str:
    """Read by a separate process inside the namespace: independent of the engine's in-process setns."""
    argv = ["ip", "netns", "exec", name, "sysctl", "-n", key]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] not in ("Z", "X")
    except OSError:
        return False
