"""The accuracy estimator's arithmetic, on simulated predictions whose true accuracy is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labelwise.monitoring import AccuracyEstimator, estimate_accuracy


def _simulate(rng: np.random.Generator, n: int, *, skill: float) -> tuple[list[str], list[float], list[str]]:
    """Predictions whose confidence c is right with chance c ** skill (skill 1: calibrated)."""
    confidence = rng.uniform(0.3, 1.0, n)
    right = rng.uniform(size=n) < confidence**skill
    labels = rng.choice(["a", "b"], n).tolist()
    truths = [
        label if ok else ("b" if label == "a" else "a") for label, ok in zip(labels, right, strict=True)
    ]
    return labels, confidence.tolist(), truths


def test_calibrated_confidences_give_an_interval_that_covers_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(300):
        labels, confidence, truths = _simulate(rng, 400, skill=1.0)
        estimate = estimate_accuracy(labels, confidence, estimator=None)
        measured = np.mean([p == t for p, t in zip(labels, truths, strict=True)])
        assert estimate.low is not None and estimate.high is not None
        covered += estimate.low <= measured <= estimate.high
    assert 0.92 <= covered / 300 <= 0.98


def test_the_fitted_map_corrects_over_confidence() -> None:
    rng = np.random.default_rng(1)
    estimator = AccuracyEstimator.fit(*_simulate(rng, 3000, skill=2.0), reference="simulated")
    assert estimator is not None and estimator.mean_confidence > estimator.reference_accuracy + 0.1
    misses_raw = misses_fitted = 0
    for _ in range(100):
        labels, confidence, truths = _simulate(rng, 500, skill=2.0)
        measured = np.mean([p == t for p, t in zip(labels, truths, strict=True)])
        raw = estimate_accuracy(labels, confidence, estimator=None, uncalibrated_because="not calibrated")
        fitted = estimate_accuracy(labels, confidence, estimator=estimator)
        misses_raw += not (raw.low or 0) <= measured <= (raw.high or 1)
        misses_fitted += not (fitted.low or 0) <= measured <= (fitted.high or 1)
        assert raw.warning and "not calibrated" in raw.warning and fitted.warning is None
    assert misses_raw > 90 and misses_fitted < 10


def test_abstentions_count_as_wrong_and_per_label_precision() -> None:
    estimate = estimate_accuracy(["a", "a", "b", None, "b"], [0.9, 0.7, 0.6, 0.8, None], estimator=None)
    assert estimate.value == pytest.approx((0.9 + 0.7 + 0.6 + 0.0) / 4)
    assert (estimate.predictions, estimate.without_confidence) == (4, 1)
    assert estimate.per_label["a"].precision == pytest.approx(0.8)
    assert estimate.per_label["b"].predictions == 1


def test_no_confidences_no_estimate() -> None:
    estimate = estimate_accuracy(["a", "b"], [None, None], estimator=None)
    assert estimate.value is None and estimate.warning == "no prediction carries probabilities"
    assert AccuracyEstimator.fit([None], [0.5], ["a"], reference="x") is None


def test_the_drift_report_puts_the_estimate_beside_the_measured_accuracy(tmp_path: Path) -> None:
    from labelwise.monitoring import DriftData, drift_report
    from labelwise.reports import write_drift_report

    def data(name: str, confidence: float, truth: list[str]) -> DriftData:
        n = len(truth)
        return DriftData(name=name, labels=["a"] * n, confidence=[confidence] * n, lengths=[40] * n,
                         texts=None, truth=truth)  # fmt: skip

    reference, current = data("ref", 0.9, ["a"] * 90 + ["b"] * 10), data("cur", 0.6, ["a"] * 30 + ["b"] * 30)
    report = drift_report(reference, current)  # no artifact: raw confidences, with a warning
    before, now = report["accuracy"]
    assert (before["measured"]["value"], now["measured"]["value"]) == (0.9, 0.5)
    assert (before["estimated"]["value"], now["estimated"]["value"]) == pytest.approx((0.9, 0.6))
    assert "calibration is unknown" in now["estimated"]["warning"]
    page = write_drift_report(report, reference, current, tmp_path / "drift.html")[0].read_text()
    assert "estimated accuracy [95%]" in page and "Estimated precision of each predicted label" in page
    assert "<b>Warning:</b>" in page
