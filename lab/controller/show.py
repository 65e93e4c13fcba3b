"""The controller's `show` request: a read command's whole output, drawn for the caller's terminal.

    {"op": "show", "command": "status"|"get"|"explain", "args": {...}, "terminal": {...}}
      -> {"ok": true, "stdout": "...", "stderr": "...", "exit": 0}
      or {"ok": false, "error": "..."}: declined (the caller runs the command itself)

`terminal` is what the caller's rich would have seen (`lab.thin_client.terminal`): whether stdout and
stderr are terminals, the size, the environment variables rich reads. The consoles built from it draw the
same characters the caller's own console would, colours included; the drawing is `lab/read_views.py`, the
one the commands use when they read the store themselves.
"""

from __future__ import annotations

import io
from typing import Any, Protocol

from rich.console import Console

from lab.console import print_error
from lab.read_views import GET_KINDS, print_explain, print_objects, print_status, unknown_kind


class ReadSource(Protocol):
    """What the drawings read: the controller's answers (`lab.controller.daemon.Controller`)."""

    def status_answer(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def machines_health(self) -> dict[str, Any]: ...

    def get_answer(self, kinds: list[str]) -> dict[str, Any]: ...

    def explain_verdict(self, request: dict[str, Any]) -> Any: ...


class _Captured(io.StringIO):
    """A console's output kept as text, claiming to be a terminal when the caller's stream is one."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def console_like(terminal: dict[str, Any], stream: str) -> Console:
    """A console that draws what the caller's `stream` ("stdout" or "stderr") console would."""
    env = {str(k): str(v) for k, v in (terminal.get("env") or {}).items()}
    size = terminal.get("size") or [None, None]
    width, height = (int(size[0]) or None, int(size[1]) or None) if size[0] is not None else (None, None)
    if env.get("COLUMNS", "").isdigit():
        width = int(env["COLUMNS"])
    if env.get("LINES", "").isdigit():
        height = int(env["LINES"])
    tty = bool(terminal.get(f"{stream}_tty"))
    if tty and env.get("TERM", "").strip().lower() in ("dumb", "unknown"):
        width, height = 80, 25  # rich's size for a dumb terminal
    return Console(file=_Captured(tty), emoji=False, width=width or 80, height=height or 25, _environ=env)


def show(controller: ReadSource, request: dict[str, Any]) -> dict[str, Any]:
    terminal, args = request.get("terminal"), request.get("args")
    terminal = terminal if isinstance(terminal, dict) else {}
    args = args if isinstance(args, dict) else {}
    out, err = console_like(terminal, "stdout"), console_like(terminal, "stderr")
    command = request.get("command")
    if command == "status":
        code: int | None = _status(controller, args, out)
    elif command == "get":
        code = _get(controller, args, out, err)
    elif command == "explain":
        code = _explain(controller, args, out, err)
    else:
        return {"ok": False, "error": f"cannot show {command!r}"}
    if code is None:
        return {"ok": False, "error": f"{command} is read by the command itself"}
    return {"ok": True, "stdout": _text(out), "stderr": _text(err), "exit": code}


def _text(console: Console) -> str:
    file = console.file
    return file.getvalue() if isinstance(file, io.StringIO) else ""


def _status(controller: ReadSource, args: dict[str, Any], out: Console) -> int:
    from lab.summary import PODS_SHOWN

    as_json = bool(args.get("json"))
    health = controller.status_answer({"lab_status": True, "pods_limit": None if as_json else PODS_SHOWN})
    data = health.pop("lab_status")
    health["running"] = True
    data["controller"] = health
    data["machines"] = controller.machines_health()
    return print_status(data, as_json, out)


def _get(controller: ReadSource, args: dict[str, Any], out: Console, err: Console) -> int | None:
    what, as_json = str(args.get("what")), bool(args.get("json"))
    if what not in GET_KINDS:
        return print_error(unknown_kind(what), err)
    if what == "services" and not as_json:
        return None  # ClusterIPs and ready endpoints: the command works them out from the store
    print_objects(what, controller.get_answer(GET_KINDS[what])["objects"], as_json, out)
    return 0


def _explain(controller: ReadSource, args: dict[str, Any], out: Console, err: Console) -> int | None:
    if str(args.get("dst", "")).startswith("svc/"):
        return None  # a Service's backends: the command works them out from the store
    found = controller.explain_verdict(args)
    if found is None:
        return None  # nothing programmed yet: the command builds the world from the store
    return print_explain(found, bool(args.get("json")), out, err)


__all__ = ["ReadSource", "console_like", "show"]
