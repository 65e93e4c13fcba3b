"""The reads a running controller answers whole: `lab status`, `lab get KIND` and `lab explain SRC DST`.

The CLI's imports (typer, click, rich and the command's module) cost 110-180 ms of every start-up, and drawing
a bank lab's status tables ~80 ms more. The controller already holds the data and has rich loaded, so it
draws the text on a console shaped like this terminal (its size, whether stdout is one, its colour
settings: `lab/controller/show.py`), and this process only prints it. It imports nothing heavier than a
socket and json.

Anything else returns None and the full CLI runs: another command or option, `--help`, not root, no
controller answering (the CLI then starts it again and says so), or a read the controller declines.
"""

from __future__ import annotations

import os
import sys
from typing import Any

COMMANDS = {"status": 0, "get": 1, "explain": 2}  # command -> positional arguments it takes
# option -> argument name, per command; every command also takes --lab/-l and --json
VALUE_OPTIONS = {
    "status": {},
    "get": {},
    "explain": {"--protocol": "protocol", "-p": "protocol", "--port": "port", "--icmp-type": "icmp_type",
                "--icmp-code": "icmp_code", "--src-ip": "src_ip", "--dst-ip": "dst_ip"},
}
INTEGER_ARGS = {"port": (1, 65535), "icmp_type": (0, 255), "icmp_code": (0, 255)}
# What rich reads from the environment to decide the size and colours of a console.
TERMINAL_ENV = ("COLUMNS", "LINES", "TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE",
                "TTY_INTERACTIVE")


def parse(argv: list[str]) -> tuple[str, str, dict[str, Any]] | None:
    """(lab, command, args) for a read answered here; None for anything else (the CLI parses it)."""
    if not argv or argv[0] not in COMMANDS:
        return None
    command, rest = argv[0], argv[1:]
    options = {"--lab": "lab", "-l": "lab", **VALUE_OPTIONS[command]}
    args: dict[str, Any] = {"json": False}
    lab, positional = "demo", []
    i = 0
    while i < len(rest):
        token = rest[i]
        name, equals, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if token == "--json":
            args["json"] = True
        elif name in options:
            if not equals:
                if i + 1 == len(rest) or rest[i + 1].startswith("-"):
                    return None
                i += 1
                value = rest[i]
            if options[name] == "lab":
                lab = value
            else:
                args[options[name]] = value
        elif token.startswith("-"):
            return None  # --help, -f, a combined short option, a typo: the CLI's to handle
        else:
            positional.append(token)
        i += 1
    if len(positional) != COMMANDS[command]:
        return None
    for name, (low, high) in INTEGER_ARGS.items():
        if name in args:
            if not args[name].isdigit() or not low <= int(args[name]) <= high:
                return None
            args[name] = int(args[name])
    if command == "get":
        args["what"] = positional[0]
    elif command == "explain":
        args["src"], args["dst"] = positional
    return lab, command, args


def terminal() -> dict[str, Any]:
    """What rich would see here: whether stdout and stderr are terminals, the terminal's size, the
    environment variables it reads."""
    size = None
    for fd in (0, 1, 2):  # the descriptors rich asks, in its order
        try:
            size = list(os.get_terminal_size(fd))
            break
        except OSError:
            continue
    return {"stdout_tty": _isatty(sys.stdout), "stderr_tty": _isatty(sys.stderr), "size": size,
            "env": {k: os.environ[k] for k in TERMINAL_ENV if k in os.environ}}


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def show(lab: str, command: str, args: dict[str, Any]) -> int | None:
    """Ask the lab's controller to draw the read and print it; its exit code, or None when it cannot."""
    if os.geteuid() != 0:
        return None  # the CLI says that the lab needs root
    from lab.controller.files import socket_file
    from lab.controller.protocol import ControllerUnavailable, request
    from topology.names import LabPaths, NameError_

    try:
        paths = LabPaths.for_lab(lab)
    except NameError_:
        return None  # the CLI says what is wrong with the name
    message = {"op": "show", "command": command, "args": args, "terminal": terminal()}
    try:
        answer = request(socket_file(paths), message, timeout=30.0)
    except ControllerUnavailable:
        return None
    if not answer.get("ok"):
        return None
    try:
        sys.stdout.write(answer["stdout"])
        sys.stdout.flush()
    except BrokenPipeError:  # `lab get pods | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    sys.stderr.write(answer["stderr"])
    return int(answer["exit"])


def run(argv: list[str]) -> int | None:
    parsed = parse(argv)
    return None if parsed is None else show(*parsed)


__all__ = ["parse", "run", "show", "terminal"]
