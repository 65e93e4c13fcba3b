"""The controller's files in the lab's run directory."""

from __future__ import annotations

from pathlib import Path

from topology.names import LabPaths


def socket_file(paths: LabPaths) -> Path:
    return paths.config_file("controller.sock")


def pid_file(paths: LabPaths) -> Path:
    return paths.pid_file("controller")


def log_file(paths: LabPaths) -> Path:
    return paths.config_file("controller.log")


def filters_file(paths: LabPaths) -> Path:
    """What the controller last wrote to each host's filter (its fingerprint and revision)."""
    return paths.config_file("controller-filters.json")


def lock_file(paths: LabPaths) -> Path:
    return paths.config_file("controller.lock")
