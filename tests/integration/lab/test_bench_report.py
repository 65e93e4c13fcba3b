"""`lab bench --quick --report DIR --json` as a user runs it (private state directories), then its page
opened in headless Chromium: plots rendered, no console errors, and every number on the page equal to the
JSON the same run printed."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from lab import pipeline
from lab.bench.figures import display, display_ratio
from lab.bench.run import QUICK, lab_names
from tests.integration.lab.browser import Browser

pytestmark = pytest.mark.root
DATAPLANES = ("nftables", "iptables", "none")
PREFIX = "itbench"  # not the default: a bench someone runs is never touched

CELLS = """JSON.stringify({
  values: [...document.querySelectorAll('td[data-figure]')].map(c => [c.dataset.figure, c.dataset.dataplane, c.textContent]),
  ratios: [...document.querySelectorAll('td[data-ratio]')].map(c => [c.dataset.ratio, c.dataset.dataplane, c.textContent]),
  images: [...document.querySelectorAll('img.plot')].map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight]),
})"""


def test_bench_quick_report_in_a_browser(lab_dirs: Path) -> None:
    report = lab_dirs / "report"
    try:
        run = subprocess.run([sys.executable, "-m", "lab", "bench", "--quick", "--report", str(report), "--json",
                              "--prefix", PREFIX],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ))
    finally:
        for lab in lab_names(PREFIX).values():
            pipeline.down(lab, force=True)  # only matters if the bench itself crashed
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert json.loads((report / "bench.json").read_text()) == result
    assert result["dataplanes"] == list(DATAPLANES)
    figures = {f["key"]: f for f in result["figures"]}
    services = QUICK["services"]

    # what was measured is real: every ordered pair probed, each agreeing with the oracle (none: delivered)
    for d in DATAPLANES:
        assert figures["verify.pairs"]["values"][d] == services * (services - 1)
        assert figures["verify.mismatches"]["values"][d] == 0
        assert figures["verify.probes_per_s"]["values"][d] > 0
        assert figures["cost.new_flow_100_us"]["values"][d] > 0
    for d in ("nftables", "iptables"):
        assert figures["programming.rules"]["values"][d] > 0
        for kind in ("policy", "label", "pod"):
            assert figures[f"latency.{kind}.samples"]["values"][d] > 0
            assert figures[f"latency.{kind}.missing"]["values"][d] == 0
            assert figures[f"latency.{kind}.p50_ms"]["values"][d] > 0
    assert figures["latency.policy.p50_ms"]["values"]["none"] is None  # nothing enforces a policy there
    assert figures["programming.rules"]["values"]["none"] == 0
    assert figures["cost.new_flow_above_none_us"]["values"]["none"] == 0
    heat = result["heatmap"]["nftables"]
    assert sum(map(sum, heat["probed"])) == services * (services - 1)
    assert 0 < sum(map(sum, heat["allowed"])) < sum(map(sum, heat["probed"]))  # the bank's policy denies most

    with Browser() as browser:
        browser.open(report / "index.html")
        page = json.loads(browser.evaluate(CELLS))
        shot = browser.screenshot(report / "screenshot.png")
        errors = list(browser.console_errors)
    assert errors == []
    images = {name: (complete, width, height) for name, complete, width, height in page["images"]}
    assert set(images) == {"plot-cost", "plot-latency", "plot-phases", "plot-heatmap"}
    for name, (complete, width, height) in images.items():
        assert complete and width >= 400 and height >= 200, (name, width, height)
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])  # the PNG header's size
    assert width == 1280 and height > 1500

    shown = {(key, d): text for key, d, text in page["values"]}
    assert len(shown) == len(figures) * len(DATAPLANES)
    for key, figure in figures.items():
        for d in DATAPLANES:
            assert shown[(key, d)] == display(figure["values"][d], figure["unit"]), (key, d)
    ratios = {(key, d): text for key, d, text in page["ratios"]}
    assert len(ratios) == len(figures) * 2  # every dataplane but the baseline
    for (key, d), text in ratios.items():
        assert text == display_ratio(figures[key]["ratios"][d]), (key, d)
