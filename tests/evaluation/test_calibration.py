"""Calibration: fitting recovers a known distortion, and a calibrated artifact serves it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labelwise.backends import Completion, LabelToken
from labelwise.evaluation import LabelledData, expected_calibration_error
from labelwise.evaluation._calibration import (
    CalibrationResult,
    coverage_curve,
    fit_calibration,
    fit_isotonic,
    fit_temperature,
)
from labelwise.evaluation._evaluate import DatasetRef
from labelwise.packaging import Classifier, ClassifierArtifact, ClassifierSpec, calibrate, package
from tests.conftest import FakeBackend, spec_dict

LABELS = ["negative", "neutral", "positive"]


def _overconfident(n: int, seed: int, sharpen: float = 2.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True distributions, labels drawn from them, and what an overconfident model reports."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.0, size=(n, 3))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.asarray([rng.choice(3, p=row) for row in true])
    reported = np.exp(logits * sharpen) / np.exp(logits * sharpen).sum(axis=1, keepdims=True)
    return reported, truth, true


def test_temperature_recovers_the_sharpening() -> None:
    reported, truth, _ = _overconfident(4000, seed=0)
    assert fit_temperature(reported, truth) == pytest.approx(2.5, rel=0.1)


def test_isotonic_and_temperature_reduce_ece() -> None:
    reported, truth, _ = _overconfident(3000, seed=1)
    y = [LABELS[t] for t in truth]
    fit, test = slice(0, 1500), slice(1500, 3000)
    before = expected_calibration_error(y[test], reported[test], labels=LABELS)
    from labelwise.packaging import Calibration

    for calibration in (
        Calibration(method="temperature", temperature=fit_temperature(reported[fit], truth[fit])),
        Calibration(method="isotonic", isotonic=fit_isotonic(reported[fit], truth[fit], LABELS)),
    ):
        after = np.asarray(
            [
                [calibrate(dict(zip(LABELS, row, strict=True)), calibration)[k] for k in LABELS]
                for row in reported[test]
            ]
        )
        assert expected_calibration_error(y[test], after, labels=LABELS) < before / 2
        assert np.allclose(after.sum(axis=1), 1.0)


def test_coverage_curve_trades_coverage_for_accuracy() -> None:
    reported, truth, _ = _overconfident(2000, seed=2)
    curve = coverage_curve(reported, truth, thresholds=[0.0, 0.5, 0.9])
    assert curve[0].coverage == 1.0
    assert curve[0].coverage > curve[1].coverage > curve[2].coverage
    assert curve[0].accuracy is not None and curve[2].accuracy is not None
    assert curve[2].accuracy > curve[0].accuracy


def _fit(
    reported: np.ndarray, truth: np.ndarray, *, abstain_below: float | None
) -> tuple[ClassifierArtifact, FakeBackend, CalibrationResult]:
    """fit_calibration on a fake backend whose top logprobs are ``reported``."""
    spec = ClassifierSpec.from_dict(spec_dict(name="calibrated", scoring="logprobs"))
    tokens = {label: LabelToken(i, label) for i, label in enumerate(LABELS)}
    artifact = ClassifierArtifact(spec=spec, label_tokens=tokens)
    backend = FakeBackend()
    backend.enqueue(
        *[
            Completion(
                "x", "fake",
                top_logprobs=[(k, math.log(max(p, 1e-30))) for k, p in zip(LABELS, row, strict=True)],
            )
            for row in reported
        ]
    )  # fmt: skip
    n = len(truth)
    data = LabelledData(
        texts=[f"text {i}" for i in range(n)],
        labels=[LABELS[t] for t in truth],
        dataset=DatasetRef(
            name="synthetic", sha256="0" * 64, rows=n, evaluated=n, sample=None, seed=0,
            text_col="text", label_col="label",
        ),
    )  # fmt: skip
    classifier = Classifier(artifact=artifact, backend=backend, max_concurrency=1)
    result = fit_calibration(
        artifact, data, method="temperature", abstain_below=abstain_below, random_state=0,
        classifier=classifier,
    )  # fmt: skip
    return artifact, backend, result


def test_fit_calibration_packages_a_new_version_that_abstains() -> None:
    reported, truth, _ = _overconfident(200, seed=3)
    artifact, backend, result = _fit(reported, truth, abstain_below=0.6)
    new_spec, report = result.spec, result.report
    assert report.after["expected_calibration_error"] < report.before["expected_calibration_error"]
    assert report.calibration.temperature is not None and report.calibration.temperature > 1.5
    assert report.fit_rows + report.held_out_rows == 200
    assert report.warnings == []
    # The held-out rows come back with the predictions the calibrated version gives them.
    assert len(result.held_out.texts) == len(result.predictions) == report.held_out_rows
    confident = [p.label is not None for p in result.predictions]
    assert confident == [max(p.probabilities.values()) >= 0.6 for p in result.predictions]  # type: ignore[union-attr]
    assert report.coverage == pytest.approx(np.mean(confident)) and 0 < report.coverage < 1

    calibrated, created = package(new_spec)
    assert created and calibrated.tag.version != artifact.tag.version
    backend.enqueue(
        Completion(
            "x",
            "fake",
            top_logprobs=[
                ("negative", math.log(0.5)),
                ("neutral", math.log(0.3)),
                ("positive", math.log(0.2)),
            ],
        )
    )
    [prediction] = Classifier(artifact=calibrated, backend=backend).classify(["unsure"])
    assert prediction.label is None and prediction.reason == "below_threshold"
    assert "abstained" in (prediction.message or "")
    assert prediction.probabilities is not None and max(prediction.probabilities.values()) < 0.5


def test_degenerate_probabilities_and_a_threshold_nothing_passes_are_warned_of() -> None:
    # All-or-nothing probabilities, right 60% of the time: no temperature can make them honest.
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3, size=200)
    guess = np.where(rng.random(200) < 0.6, truth, (truth + 1) % 3)
    reported = np.eye(3)[guess]
    _, _, result = _fit(reported, truth, abstain_below=0.99)
    warnings = " ".join(result.report.warnings)
    assert "put all their probability on one label" in warnings
    assert "leaves a label on only" in warnings


def test_calibration_needs_logprobs() -> None:
    from labelwise.core import SpecError

    data = spec_dict(calibration={"method": "temperature", "temperature": 2.0})
    with pytest.raises(SpecError, match="calibration needs scoring: logprobs"):
        ClassifierSpec.from_dict(data)
