"""`python -m lab.controller --lab LAB --run-dir DIR [--resync SECONDS]`: the controller of one lab.

`--run-dir` is not read (the lab's paths follow from the environment): it puts the run directory on the
command line, so `lab down` recognises the process as the lab's by its pid file and command line.
"""

from __future__ import annotations

import argparse
import sys

from lab.controller.daemon import AlreadyRunning, main


def run() -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.controller")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--resync", type=float, default=1.0, help="seconds between resyncs")
    args = parser.parse_args()
    try:
        return main(args.lab, args.resync)
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(run())
