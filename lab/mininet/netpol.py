"""`sudo mn --custom lab/mininet/netpol.py`: Mininet's `mn` on the netpol-lab demo (or any lab).

mn runs this file while it reads its options, before it builds anything. The file hands over to the lab
right there: it brings the lab up when it is not up yet (`lab up`, the demo unless NETPOL_LAB_FILE names
a lab file), opens Mininet's CLI on it (`lab cli`: `dev/web ping prod/db`, `pingall`, `net`, `dump`), takes
down on exit a lab it brought up itself, and exits with the CLI's status. So mn never builds its own
network, never starts a controller and never reaches its machine-wide clean-up (`mn -c`).
Environment: NETPOL_LAB (lab name, default demo), NETPOL_LAB_FILE (a lab file for `lab up`),
NETPOL_LAB_ENGINE (`mininet`: the lab's nodes made as Mininet nodes, see topology/mininet_engine.py).
"""

import os
import subprocess
import sys


def _repo() -> str:
    """mn exec()s this file without __file__: find it on mn's own command line."""
    args = sys.argv
    for i, arg in enumerate(args):
        path = args[i + 1] if arg == "--custom" and i + 1 < len(args) else arg.split("=", 1)[1] if arg.startswith("--custom=") else None
        if path and path.endswith("netpol.py"):
            return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    raise SystemExit("netpol-lab: run as `mn --custom <repo>/lab/mininet/netpol.py`")


def _hand_over() -> int:
    repo = _repo()
    lab_cmd = [os.path.join(repo, ".venv", "bin", "python"), "-m", "lab"]
    lab = os.environ.get("NETPOL_LAB", "demo")
    status = subprocess.run([*lab_cmd, "status", "--lab", lab, "--json"], cwd=repo, capture_output=True)
    started = status.returncode != 0
    if started:
        up = [*lab_cmd, "up"] + (["-f", os.environ["NETPOL_LAB_FILE"]] if os.environ.get("NETPOL_LAB_FILE") else [])
        if lab != "demo" or os.environ.get("NETPOL_LAB_FILE"):
            up += ["--name", lab]
        if os.environ.get("NETPOL_LAB_ENGINE"):
            up += ["--engine", os.environ["NETPOL_LAB_ENGINE"]]
        if subprocess.run(up, cwd=repo).returncode != 0:
            return 1
    try:
        return subprocess.run([*lab_cmd, "cli", "--lab", lab], cwd=repo).returncode
    finally:
        if started:
            subprocess.run([*lab_cmd, "down", lab], cwd=repo)


os._exit(_hand_over())  # noqa: SLF001 - leave mn before it builds a network or cleans anything
