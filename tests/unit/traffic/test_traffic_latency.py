"""Percentiles, path classes and latency pair choice."""

from __future__ import annotations

import math
from ipaddress import IPv4Address

import pytest

from traffic.latency import (
    CROSS_HOST,
    SAME_HOST,
    latency_pairs,
    path_class,
    percentile,
    percentiles,
    summarise_rtts,
)
from traffic.model import ProbeEndpoint, find_endpoint


def test_nearest_rank_percentiles() -> None:
    values = list(range(1, 101))
    assert percentiles(values) == {"p50": 50.0, "p90": 90.0, "p99": 99.0}
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_path_classes_and_pairs() -> None:
    pods = [ProbeEndpoint(f"n/p{i}", f"x{i}", IPv4Address(f"10.0.0.{i + 1}"), "pod", "n", f"h{i % 2}")
            for i in range(6)]
    assert path_class("h1", "h1") == SAME_HOST and path_class("h1", "h2") == CROSS_HOST
    pairs = latency_pairs(pods, per_class=4)
    classes = [path_class(a.host, b.host) for a, b in pairs]
    assert classes.count(SAME_HOST) == 4 and classes.count(CROSS_HOST) == 4


def test_summary_has_samples_and_drops() -> None:
    out = summarise_rtts({"c": {SAME_HOST: [1.0, 2.0, 3.0]}}, {"c": {CROSS_HOST: 2}})
    assert out["c"][SAME_HOST]["samples"] == 3 and out["c"][SAME_HOST]["p50"] == 2.0
    assert out["c"][CROSS_HOST]["dropped"] == 2 and out["c"][CROSS_HOST]["samples"] == 0


def test_find_endpoint_by_name_ip_or_netns() -> None:
    eps = [ProbeEndpoint("dev/web", "npl-x-p-dev.web", IPv4Address("10.0.0.9"))]
    assert find_endpoint(eps, "dev/web") is find_endpoint(eps, "10.0.0.9") is find_endpoint(eps, "npl-x-p-dev.web")
    with pytest.raises(KeyError, match="did you mean dev/web"):
        find_endpoint(eps, "prod/web")
