"""The drift report opens in a real browser (headless Chromium) and shows its plots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.batch.test_drift import _scored, _split
from tests.conftest import YELP_CSV
from tests.test_cli import labelwise

CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_drift_report_renders_its_plots_in_chromium(tmp_path: Path) -> None:
    from PIL import Image

    frame = pd.read_csv(YELP_CSV).sample(n=600, random_state=0)
    frame["stars"] = frame["stars"].astype(str)
    reference, current = _split(frame, 0)
    current = current[current["stars"].isin(["1", "2", "3"])]
    report = tmp_path / "drift.html"
    labelwise("batch", "drift", "--reference", str(_scored(reference, tmp_path / "r.csv")),
              "--current", str(_scored(current, tmp_path / "c.csv")), "--out", str(report))  # fmt: skip
    screenshot = tmp_path / "drift.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2200",
         f"--screenshot={screenshot}", report.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    import numpy as np

    pixels = np.asarray(Image.open(screenshot).convert("RGB"), dtype=int).reshape(-1, 3)

    def near(color: tuple[int, int, int]) -> int:
        return int((np.abs(pixels - np.asarray(color)) < 12).all(axis=1).sum())

    # matplotlib's first two colours: the reference and current bars and histograms.
    assert near((31, 119, 180)) > 2000 and near((255, 127, 14)) > 2000
