"""Accuracy without labels: confidence-based performance estimation.

A prediction's confidence becomes its chance of being right through a monotone map fitted on
labelled reference predictions (isotonic regression of "was right" on confidence, as CBPE does):
raw probabilities are rarely calibrated, and the map makes them so on the reference data. The
mean chance over a window estimates its accuracy; the sum of c(1 - c) is the variance of the
number right (a Poisson-binomial count), and the map's own uncertainty (the reference is a
sample) widens the interval. The map holds while what a confidence means holds: under a
covariate shift (other texts, same task) the estimate follows accuracy; under a label or concept
shift it follows only the part the confidences see.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from ..packaging import ClassifierArtifact

__all__ = [
    "ACCURACY_ESTIMATOR",
    "AccuracyEstimate",
    "AccuracyEstimator",
    "LabelEstimate",
    "estimate_accuracy",
]

ACCURACY_ESTIMATOR = "accuracy_estimator.json"
"""The artifact attachment holding the fitted map, written when packaging with evaluation data."""
_Z = 1.959963984540054  # two-sided 95%


class AccuracyEstimator(BaseModel):
    """Confidence to chance of being right, fitted on labelled reference predictions."""

    confidences: list[float] = Field(description="Knots of the monotone map (isotonic regression).")
    chances: list[float]
    reference: str
    reference_n: int
    reference_accuracy: float
    mean_confidence: float = Field(description="On the reference; above reference_accuracy: over-confident.")

    @classmethod
    def fit(
        cls,
        labels: Sequence[str | None],
        confidences: Sequence[float | None],
        truths: Sequence[str],
        *,
        reference: str,
    ) -> AccuracyEstimator | None:
        """The map from predictions with a label and a confidence; ``None`` when none has both."""
        from sklearn.isotonic import IsotonicRegression

        rows = [
            (float(c), float(label == truth))
            for label, c, truth in zip(labels, confidences, truths, strict=True)
            if label is not None and c is not None and not math.isnan(c)
        ]
        if not rows:
            return None
        x, y = np.asarray([r[0] for r in rows]), np.asarray([r[1] for r in rows])
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        return cls(
            confidences=[float(v) for v in fitted.X_thresholds_],
            chances=[float(v) for v in fitted.y_thresholds_],
            reference=reference,
            reference_n=len(rows),
            reference_accuracy=float(y.mean()),
            mean_confidence=float(x.mean()),
        )

    @classmethod
    def attached_to(cls, artifact: ClassifierArtifact) -> AccuracyEstimator | None:
        data = artifact.attachments.get(ACCURACY_ESTIMATOR)
        return None if data is None else cls.model_validate(json.loads(data))

    def chance(self, confidences: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(confidences, self.confidences, self.chances), dtype=float)

    @property
    def variance(self) -> float:
        """How uncertain the map's level is: the reference accuracy's sampling variance."""
        p = self.reference_accuracy
        return p * (1 - p) / self.reference_n


class LabelEstimate(BaseModel):
    predictions: int
    precision: float
    low: float
    high: float


class AccuracyEstimate(BaseModel):
    """Estimated accuracy of a window of predictions, and of each predicted label's precision."""

    value: float | None = Field(description="None when no prediction carried a confidence.")
    low: float | None
    high: float | None
    predictions: int = Field(description="Predictions with a confidence (abstentions count as wrong).")
    without_confidence: int = Field(description="Left out: they carry no probabilities.")
    per_label: dict[str, LabelEstimate]
    method: str = Field(description="fitted map (from the reference), or raw confidence.")
    warning: str | None = Field(default=None, description="Why the estimate may be off.")


def _interval(chances: np.ndarray, extra_variance: float) -> tuple[float, float, float]:
    n = len(chances)
    mean = float(chances.mean())
    spread = _Z * math.sqrt(float((chances * (1 - chances)).sum()) / n**2 + extra_variance)
    return mean, max(0.0, mean - spread), min(1.0, mean + spread)


def estimate_accuracy(
    labels: Sequence[str | None],
    confidences: Sequence[float | None],
    *,
    estimator: AccuracyEstimator | None,
    uncalibrated_because: str | None = None,
) -> AccuracyEstimate:
    """From predicted labels and their confidences (a ``None`` label: an abstention, never right)."""
    kept = [
        (label, float(c))
        for label, c in zip(labels, confidences, strict=True)
        if c is not None and not math.isnan(c)
    ]
    missing = len(labels) - len(kept)
    if estimator is None:
        method = "raw confidence"
        warning = (
            None
            if uncalibrated_because is None
            else f"{uncalibrated_because}, and no accuracy estimator was fitted (package with --eval DATA)"
        )
    else:
        method, warning = f"fitted map ({estimator.reference}, {estimator.reference_n} predictions)", None
    if not kept:
        return AccuracyEstimate(
            value=None, low=None, high=None, predictions=0, without_confidence=missing, per_label={},
            method=method, warning=warning or "no prediction carries probabilities",
        )  # fmt: skip
    raw = np.asarray([c for _, c in kept])
    chances = estimator.chance(raw) if estimator is not None else raw
    chances = np.where([label is None for label, _ in kept], 0.0, chances)
    extra = estimator.variance if estimator is not None else 0.0
    value, low, high = _interval(chances, extra)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, (label, _) in enumerate(kept):
        if label is not None:
            by_label[label].append(i)
    per_label = {}
    for label, rows in sorted(by_label.items()):
        precision, label_low, label_high = _interval(chances[rows], extra)
        per_label[label] = LabelEstimate(
            predictions=len(rows), precision=precision, low=label_low, high=label_high
        )
    return AccuracyEstimate(
        value=value, low=low, high=high, predictions=len(kept), without_confidence=missing,
        per_label=per_label, method=method, warning=warning,
    )  # fmt: skip
