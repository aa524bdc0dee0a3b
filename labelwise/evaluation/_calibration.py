"""Fitting probability calibration on held-out data, and the coverage-accuracy trade-off.

The classifier's raw label distribution (logprobs scoring) is recalibrated by temperature
scaling (one parameter, keeps the ranking) or per-label isotonic regression (monotone, more
flexible, needs more data). The fitted calibrator is stored in the spec, so a calibrated
classifier is a new artifact version that serves calibrated probabilities everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from ..core import LabelwiseError
from ..packaging import (
    Calibration,
    Classifier,
    ClassifierArtifact,
    ClassifierSpec,
    IsotonicCurve,
    Prediction,
    calibrate,
    decide,
)
from . import _metrics as m
from ._evaluate import LabelledData, prediction_probabilities
from ._split import stratified_split

__all__ = [
    "CalibrationReport",
    "CalibrationResult",
    "CoveragePoint",
    "coverage_curve",
    "fit_calibration",
    "fit_isotonic",
    "fit_temperature",
]

Method = Literal["temperature", "isotonic"]


class CoveragePoint(BaseModel):
    threshold: float
    coverage: float
    accuracy: float | None


class CalibrationReport(BaseModel):
    artifact_tag: str
    method: str
    fit_rows: int
    held_out_rows: int
    before: dict[str, float]
    after: dict[str, float]
    coverage_curve: list[CoveragePoint]
    calibration: Calibration
    coverage: float
    """Share of held-out texts that get a label (1 without ``abstain_below``)."""
    warnings: list[str] = []


@dataclass(frozen=True)
class CalibrationResult:
    """The calibrated spec (package it for the new version), the report, and the held-out rows with
    their calibrated predictions (to measure and profile the new version without scoring again)."""

    spec: ClassifierSpec
    report: CalibrationReport
    held_out: LabelledData
    predictions: list[Prediction]


_TEMPERATURE_BOUNDS = (0.05, 20.0)


def fit_temperature(proba: np.ndarray, truth: np.ndarray) -> float:
    """The temperature T minimising the negative log likelihood of p ** (1/T), renormalised."""
    logs = np.log(np.clip(proba, 1e-12, 1.0))

    def nll(temperature: float) -> float:
        scaled = logs / temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(-(scaled[np.arange(len(truth)), truth] - log_norm).mean())

    return float(minimize_scalar(nll, bounds=_TEMPERATURE_BOUNDS, method="bounded").x)


def fit_isotonic(proba: np.ndarray, truth: np.ndarray, labels: Sequence[str]) -> dict[str, IsotonicCurve]:
    """One monotone curve per label, fitted one-vs-rest, stored as its breakpoints."""
    curves = {}
    for k, label in enumerate(labels):
        regression = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        regression.fit(proba[:, k], (truth == k).astype(float))
        x, y = regression.X_thresholds_.tolist(), regression.y_thresholds_.tolist()
        if len(x) < 2:  # a constant curve (all scores equal): keep its value over [0, 1]
            x, y = [0.0, 1.0], [y[0], y[0]] if y else [0.0, 0.0]
        curves[label] = IsotonicCurve(x=x, y=y)
    return curves


def _apply(proba: np.ndarray, calibration: Calibration, labels: Sequence[str]) -> np.ndarray:
    rows = [calibrate(dict(zip(labels, row, strict=True)), calibration) for row in proba]
    return np.asarray([[row[label] for label in labels] for row in rows])


def coverage_curve(
    proba: np.ndarray,
    truth: np.ndarray,
    thresholds: Sequence[float] = tuple(np.round(np.arange(0, 1.0, 0.05), 2)),
) -> list[CoveragePoint]:
    """Answer only when the top probability reaches the threshold: coverage and accuracy then."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    points = []
    for threshold in thresholds:
        answered = confidence >= threshold
        accuracy = float(correct[answered].mean()) if answered.any() else None
        points.append(
            CoveragePoint(threshold=float(threshold), coverage=float(answered.mean()), accuracy=accuracy)
        )
    return points


def _quality(labels_true: Sequence[str], proba: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    return {
        "expected_calibration_error": m.expected_calibration_error(labels_true, proba, labels=labels),
        "brier_score": m.brier_score(labels_true, proba, labels=labels),
        "log_loss": m.log_loss(labels_true, proba, labels=labels),
        "accuracy": m.accuracy(labels_true, [labels[i] for i in proba.argmax(axis=1)]),
    }


def fit_calibration(
    artifact: ClassifierArtifact,
    data: LabelledData,
    *,
    method: Method = "temperature",
    held_out: float = 0.5,
    abstain_below: float | None = None,
    random_state: int = 0,
    classifier: Classifier | None = None,
    on_progress: Callable[[int], None] | None = None,
    concurrency: int = 16,
) -> CalibrationResult:
    """Score ``data`` uncalibrated, fit on one stratified part, report on the other."""
    spec = artifact.spec
    if spec.scoring != "logprobs":
        raise LabelwiseError(
            f"{artifact.tag} uses scoring: {spec.scoring}; calibration needs scoring: logprobs"
        )
    labels = spec.task.labels
    raw = ClassifierArtifact(spec=_with_calibration(spec, None), label_tokens=artifact.label_tokens)
    classifier = classifier or Classifier(artifact=raw, max_concurrency=concurrency)
    predictions = classifier.classify(data.texts, on_progress=on_progress)
    proba = prediction_probabilities(predictions, labels)
    if proba is None:
        raise LabelwiseError("the classifier returned no probabilities to calibrate")
    keep = ~np.isnan(proba).any(axis=1)
    proba = proba[keep]
    kept = np.flatnonzero(keep)
    y_true = np.asarray(data.labels, dtype=object)[keep]
    truth = np.asarray([labels.index(v) for v in y_true])
    fit_idx, test_idx = stratified_split(truth.tolist(), test_size=held_out, seed=random_state)
    fitted_on = (
        f"{data.dataset.name} sha256:{data.dataset.sha256[:16]} rows:{len(fit_idx)} seed:{random_state}"
    )
    if method == "temperature":
        calibration = Calibration(
            method="temperature",
            temperature=fit_temperature(proba[fit_idx], truth[fit_idx]),
            abstain_below=abstain_below,
            fitted_on=fitted_on,
        )
    else:
        calibration = Calibration(
            method="isotonic",
            isotonic=fit_isotonic(proba[fit_idx], truth[fit_idx], labels),
            abstain_below=abstain_below,
            fitted_on=fitted_on,
        )
    calibrated = _apply(proba[test_idx], calibration, labels)
    held_out_predictions = [_recalibrated(predictions[i], calibration) for i in kept[test_idx]]
    coverage = float(np.mean([p.label is not None for p in held_out_predictions]))
    report = CalibrationReport(
        artifact_tag=str(artifact.tag),
        method=method,
        fit_rows=len(fit_idx),
        held_out_rows=len(test_idx),
        before=_quality(y_true[test_idx].tolist(), proba[test_idx], labels),
        after=_quality(y_true[test_idx].tolist(), calibrated, labels),
        coverage_curve=coverage_curve(calibrated, truth[test_idx]),
        calibration=calibration,
        coverage=coverage,
        warnings=_warnings(calibration, coverage, raw=proba[test_idx], truth=truth[test_idx]),
    )
    held_out_data = LabelledData(
        texts=[data.texts[i] for i in kept[test_idx]],
        labels=[data.labels[i] for i in kept[test_idx]],
        dataset=data.dataset.model_copy(update={"evaluated": len(test_idx)}),
    )
    calibrated_spec = _with_calibration(spec, calibration)
    return CalibrationResult(calibrated_spec, report, held_out_data, held_out_predictions)


def _recalibrated(prediction: Prediction, calibration: Calibration) -> Prediction:
    """The prediction the calibrated version gives for the same raw label distribution."""
    assert prediction.probabilities is not None
    outcome = decide(prediction.probabilities, calibration)
    return prediction.model_copy(
        update={"label": outcome.label, "probabilities": outcome.probabilities, "reason": outcome.reason,
                "message": outcome.message}
    )  # fmt: skip


def _warnings(calibration: Calibration, coverage: float, *, raw: np.ndarray, truth: np.ndarray) -> list[str]:
    found = []
    certain = float((raw.max(axis=1) >= 0.999).mean())
    accuracy = float((raw.argmax(axis=1) == truth).mean())
    if certain >= 0.9 and accuracy < 0.95:
        found.append(
            f"{certain:.0%} of the raw predictions put all their probability on one label, yet "
            f"{accuracy:.0%} are right: the backend's probabilities are all-or-nothing, which "
            "calibration cannot turn into honest ones"
        )
    temperature = calibration.temperature
    if temperature is not None and not (
        _TEMPERATURE_BOUNDS[0] * 1.05 < temperature < _TEMPERATURE_BOUNDS[1] * 0.95
    ):
        found.append(
            f"the fitted temperature {temperature:.3g} is at the edge of the search range "
            f"{_TEMPERATURE_BOUNDS}: the raw probabilities say little about which predictions are right"
        )
    if calibration.abstain_below is not None and coverage < 0.5:
        found.append(
            f"abstain_below {calibration.abstain_below} leaves a label on only {coverage:.1%} of "
            "held-out texts; the coverage curve shows what each threshold keeps"
        )
    return found


def _with_calibration(spec: ClassifierSpec, calibration: Calibration | None) -> ClassifierSpec:
    """A validated copy of ``spec`` with another calibration."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data.pop("calibration", None)
    if calibration is not None:
        data["calibration"] = calibration.model_dump(mode="json", exclude_none=True)
    return ClassifierSpec.from_dict(data)
