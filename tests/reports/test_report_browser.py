"""The drift and RAI reports open in a real browser (headless Chromium) and show their plots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.batch.test_drift import _scored, _split
from tests.conftest import YELP_CSV
from tests.test_cli import labelwise

CHROMIUM = shutil.which("chromium")


def _screenshot(page: Path, tmp_path: Path) -> np.ndarray:
    """The page as headless Chromium renders it: an (n, 3) array of RGB pixels."""
    from PIL import Image

    screenshot = tmp_path / f"{page.stem}.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2200",
         f"--screenshot={screenshot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return np.asarray(Image.open(screenshot).convert("RGB"), dtype=int).reshape(-1, 3)


def _near(pixels: np.ndarray, color: tuple[int, int, int]) -> int:
    return int((np.abs(pixels - np.asarray(color)) < 12).all(axis=1).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_drift_report_renders_its_plots_in_chromium(tmp_path: Path) -> None:
    frame = pd.read_csv(YELP_CSV).sample(n=600, random_state=0)
    frame["stars"] = frame["stars"].astype(str)
    reference, current = _split(frame, 0)
    current = current[current["stars"].isin(["1", "2", "3"])]
    report = tmp_path / "drift.html"
    labelwise("batch", "drift", "--reference", str(_scored(reference, tmp_path / "r.csv")),
              "--current", str(_scored(current, tmp_path / "c.csv")), "--out", str(report))  # fmt: skip
    pixels = _screenshot(report, tmp_path)

    # matplotlib's first two colours: the reference and current bars and histograms.
    assert _near(pixels, (31, 119, 180)) > 2000 and _near(pixels, (255, 127, 14)) > 2000


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_rai_report_renders_its_plots_in_chromium(tmp_path: Path) -> None:
    from tests.batch.test_rai import _scored_frame

    _scored_frame().to_csv(tmp_path / "scored.csv", index=False)
    report = tmp_path / "rai.html"
    labelwise("batch", "rai", str(tmp_path / "scored.csv"), "--label-col", "truth", "--cohort", "region",
              "--n-boot", "20", "--out", str(report))  # fmt: skip
    pixels = _screenshot(report, tmp_path)
    # The cohort bars and the reliability curve are drawn in this blue; a page without plots has none.
    assert _near(pixels, (76, 114, 176)) > 3000
