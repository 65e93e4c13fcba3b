"""The lab's health as `lab status` reports it: the controller's report per host, or plainly that it is down
(`lab.summary.render_health` draws it).

Also what every `lab` command does first: start the lab's controller again if it died.
"""

from __future__ import annotations

import time
from typing import Any

from topology.names import LabPaths


def restart_controller(paths: LabPaths) -> int | None:
    """The next `lab` command starts a dead controller again (and records why); returns its new pid, None when
    it was running."""
    from lab.controller import events, launcher

    pid = launcher.ensure_running(paths)
    if pid is not None:
        events.record(paths, events.Event(time.time(), "repair", "controller",
                                          f"was not running: started again by a lab command (pid {pid})"))
    return pid


def controller_health(paths: LabPaths, **request: Any) -> dict[str, Any]:
    """The controller's report, or a plain statement that it is down (then started again: degraded).
    `request`: more of the status request (`lab_status=True`: the lab's hosts and pods, from its memory)."""
    from lab.controller import launcher
    from lab.controller.protocol import ControllerUnavailable

    try:
        restarted = restart_controller(paths)
    except launcher.ControllerError as exc:
        return {"running": False, "degraded": [f"the controller is down and could not be started: {exc}"]}
    try:
        health = launcher.ask(paths, {"op": "status", **request}, timeout=30.0)
    except ControllerUnavailable as exc:
        return {"running": False, "degraded": [f"the controller is down: {exc}"]}
    health["running"] = True
    if restarted is not None:
        health["degraded"] = ["the controller was down (started again now)", *health["degraded"]]
    return health
