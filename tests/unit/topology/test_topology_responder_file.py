"""The responder's pods file round-trips and turns into the sockets to open."""

from __future__ import annotations

from pathlib import Path

import pytest

from topology.names import PREFIX
from topology.responder import Endpoint, http_reply, wanted_endpoints
from topology.responder_ctl import read_responder_pods, write_responder_pods


def test_pods_file_round_trip_and_endpoints(plan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pods.json"
    write_responder_pods(path, plan.pods)
    pods = read_responder_pods(path)
    assert [t.key for t in pods.targets] == ["dev/web", "dev/api", "prod/db"]
    wanted, skipped = wanted_endpoints(pods)
    assert wanted == {
        Endpoint(f"{PREFIX}-tt1-p-dev.web", "TCP", 80),
        Endpoint(f"{PREFIX}-tt1-p-dev.web", "UDP", 53),
        Endpoint(f"{PREFIX}-tt1-p-dev.api", "TCP", 8080),
        Endpoint(f"{PREFIX}-tt1-p-prod.db", "TCP", 5432),
    }
    assert skipped == ["prod/db 9/SCTP"]


def test_a_broken_pods_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pods.json"
    path.write_text('{"targets": [{"key": "a", "netns": "n", "ports": [], "extra": 1}]}')
    with pytest.raises(ValueError):
        read_responder_pods(path)


def test_http_requests_get_an_answer_naming_the_pod() -> None:
    reply = http_reply(b"GET /x HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", "dev/web")
    assert reply is not None
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 8" in head and body == b"dev/web\n"
    head_only = http_reply(b"HEAD / HTTP/1.0\r\n\r\n", "dev/web")
    assert head_only is not None and head_only.endswith(b"\r\n\r\n") and b"Content-Length: 8" in head_only


@pytest.mark.parametrize("data", [b"hello", b"GET /", b"GET / SPDY/3\r\n", b"\x16\x03\x01\x02\x00", b""])
def test_anything_else_is_echoed(data: bytes) -> None:
    assert http_reply(data, "dev/web") is None
