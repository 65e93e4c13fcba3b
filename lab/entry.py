"""The `lab` command: a read the lab's controller answers whole (`lab/thin_client.py`) is printed before the
CLI is even imported; everything else runs the CLI (`lab/cli.py`)."""

from __future__ import annotations

import sys


def main() -> None:
    from lab.thin_client import run

    code = run(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from lab.cli import main as cli_main

    cli_main()
