"""Accuracy without labels, validated on held-out Yelp reviews, as a user runs it.

An embedding classifier is trained, measured on 600 other reviews with `labelwise eval --attach`
(which fits the confidence map on them), new reviews are scored, and
`labelwise batch drift --label-col` estimates accuracy from confidences beside the
accuracy measured from the true stars: with no shift, and under two shifts (only long reviews,
only one- and two-star reviews). The README's table comes from this test (run it with -s).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import YELP_CSV
from tests.test_cli import labelwise

TRAIN_ROWS = 1200
REFERENCE_ROWS = 600
POOL_ROWS = 1500


def _drift(current: Path, tag: str, out: Path) -> dict[str, Any]:
    result = labelwise(
        "batch", "drift", "--current", str(current), "--model", tag, "--label-col", "stars",
        "--out", str(out), "--json",
    )  # fmt: skip
    [_, current_side] = json.loads(result.stdout)["accuracy"]
    return dict(current_side)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame, Path]:
    folder = tmp_path_factory.mktemp("estimate")
    frame = pd.read_csv(YELP_CSV)
    train = frame.sample(n=TRAIN_ROWS, random_state=7)
    rest = frame.drop(train.index)
    reference = rest.sample(n=REFERENCE_ROWS, random_state=8)
    pool = rest.drop(reference.index).sample(n=POOL_ROWS, random_state=9)
    for name, part in (("train", train), ("reference", reference), ("pool", pool)):
        part.to_csv(folder / f"{name}.csv", index=False)
    report = json.loads(
        labelwise(
            "train-embedding",
            str(folder / "train.csv"),
            "--name",
            "yelp-estimate",
            "--label-col",
            "stars",
            "--families",
            "logistic_regression",
            "--folds",
            "3",
            "--json",
        ).stdout  # fmt: skip
    )
    tag = report["artifact_tag"]
    labelwise("eval", tag, str(folder / "reference.csv"), "--label-col", "stars", "--attach")
    labelwise("batch", "score", tag, str(folder / "pool.csv"), "--out", str(folder / "scored.csv"))
    return tag, pd.read_csv(folder / "scored.csv"), folder


@pytest.mark.slow  # about 2.5 minutes: 3,300 reviews embedded on the CPU
def test_estimate_covers_measured_accuracy_and_follows_shifts(scored: tuple[str, pd.DataFrame, Path]) -> None:
    tag, frame, folder = scored
    lengths = frame["text"].str.len()
    windows = {
        "no shift (random held-out reviews)": frame.sample(n=600, random_state=10),
        "only long reviews (top quarter by length)": frame[lengths > lengths.quantile(0.75)],
        "only low stars (1 and 2)": frame[frame["stars"] <= 2],
    }
    results = {}
    for name, window in windows.items():
        path = folder / f"{len(results)}.csv"
        window.to_csv(path, index=False)
        results[name] = _drift(path, tag, folder / f"drift-{len(results)}.html")

    print("\n| window | reviews | estimated accuracy [95%] | measured accuracy [95%] |\n|---|---|---|---|")
    for name, side in results.items():
        est, meas = side["estimated"], side["measured"]
        print(f"| {name} | {meas['labelled']} | {est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}] "
              f"| {meas['value']:.3f} [{meas['low']:.3f}, {meas['high']:.3f}] |")  # fmt: skip

    plain, long, low = results.values()
    for side in results.values():
        assert side["estimated"]["warning"] is None and side["estimated"]["method"].startswith("fitted map")
    # Without a shift the estimate's interval covers the accuracy measured from the stars.
    assert plain["estimated"]["low"] <= plain["measured"]["value"] <= plain["estimated"]["high"]
    # Under each shift, accuracy falls, and the estimate falls with it.
    for shifted in (long, low):
        assert shifted["measured"]["value"] < plain["measured"]["value"]
        assert shifted["estimated"]["value"] < plain["estimated"]["value"]
    # Per-label precision is estimated for every label the window predicted.
    assert set(plain["estimated"]["per_label"]) <= {"1", "2", "3", "4", "5"}
    assert all(
        0 <= row["low"] <= row["precision"] <= row["high"] <= 1
        for row in plain["estimated"]["per_label"].values()
    )
