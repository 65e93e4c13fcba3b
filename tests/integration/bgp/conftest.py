"""The `make_lab` fixture lives in bgp_lab.py, beside the helpers the tests import from it."""

from bgp_lab import make_lab  # noqa: F401
