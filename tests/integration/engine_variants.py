"""The engines the fabric, dataplane and traffic integration tests run on, as one pytest parameter:
netns (always), netns with every pod a Docker container, and the Mininet engine. The last two are marked
`engines`: `-m engines` runs just them, `-m "not engines"` leaves them out."""

from __future__ import annotations

from typing import Any

import pytest

VARIANTS = ["netns", pytest.param("docker-pods", marks=pytest.mark.engines),
            pytest.param("mininet", marks=pytest.mark.engines)]


def lab_file_fields(variant: str) -> dict[str, Any]:
    """What a lab file says to run on `variant` (a lab's own fields win over these)."""
    return {"netns": {}, "docker-pods": {"runtime": "docker"}, "mininet": {"engine": "mininet"}}[variant]


def scratch_options(variant: str) -> dict[str, Any]:
    """The ScratchLab arguments for `variant`."""
    return {"netns": {}, "docker-pods": {"runtime": "docker"}, "mininet": {"engine_name": "mininet"}}[variant]


def after(variant: str) -> None:
    """Once a variant's labs are down: stop the lab's dockerd if Docker pods needed it."""
    if variant == "docker-pods":
        from topology.docker_engine import stop_daemon_if_idle

        stop_daemon_if_idle()
