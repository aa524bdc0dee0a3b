"""Classification metrics shaped like scikit-learn's: ``f(y_true, y_pred, *, labels=None, ...)``.

A prediction of ``None`` (the classifier abstained or its output was not a label) counts as
wrong for accuracy, F1 and the confusion matrix, and is left out of the ordinal metrics, whose
distances need a label; ``coverage`` reports how many were left out. Ordinal metrics measure
distance by position in ``labels`` (for stars, "1" < "2" < ... < "5").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

__all__ = [
    "accuracy",
    "brier_score",
    "confusion_matrix",
    "coverage",
    "expected_calibration_error",
    "log_loss",
    "macro_f1",
    "mae",
    "off_by_one_accuracy",
    "per_class_report",
    "quadratic_weighted_kappa",
    "rmse",
    "weighted_f1",
]

ABSTAIN = "__abstain__"


def _labels(y_true: Any, y_pred: Any, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        return [str(label) for label in labels]
    seen = {str(v) for v in np.asarray(y_true, dtype=object)}
    seen |= {str(v) for v in np.asarray(y_pred, dtype=object) if v is not None}
    return sorted(seen)


def _as_str(values: Any) -> np.ndarray:
    """Labels as strings, ``None`` as a reserved value that matches no label."""
    return np.asarray(
        [ABSTAIN if v is None else str(v) for v in np.asarray(values, dtype=object)], dtype=object
    )


def accuracy(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> float:
    """Share of exact matches; abstentions count as wrong."""
    # Plain numpy: bootstrap intervals call this thousands of times.
    matches = (_as_str(y_true) == _as_str(y_pred)).astype(float)
    return float(np.average(matches, weights=sample_weight)) if matches.size else float("nan")


def _f1(y_true: Any, y_pred: Any, labels: Sequence[str] | None, sample_weight: Any, average: str) -> float:
    """Per-label F1 averaged, as scikit-learn's ``f1_score(..., zero_division=0)`` computes it.

    Counted with numpy from integer codes: scikit-learn's input checks cost ~15 ms per call on
    10,000 items, and bootstrap intervals and per-cohort bootstraps call this thousands of times.
    """
    names = _labels(y_true, y_pred, labels)
    index = {name: i for i, name in enumerate(names)}
    true = np.fromiter((index.get(v, -1) for v in _as_str(y_true)), dtype=np.int64)
    pred = np.fromiter((index.get(v, -1) for v in _as_str(y_pred)), dtype=np.int64)
    weight = np.ones(len(true)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    n = len(names)
    support = np.bincount(true[true >= 0], weight[true >= 0], minlength=n)
    predicted = np.bincount(pred[pred >= 0], weight[pred >= 0], minlength=n)
    hit = (true == pred) & (true >= 0)
    tp = np.bincount(true[hit], weight[hit], minlength=n)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros(n), where=denominator > 0)
    if average == "macro":
        return float(f1.mean()) if n else 0.0
    return float(f1 @ support / support.sum()) if support.sum() > 0 else 0.0


def macro_f1(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> float:
    """Unweighted mean of per-label F1 over ``labels``."""
    return _f1(y_true, y_pred, labels, sample_weight, "macro")


def weighted_f1(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> float:
    """Per-label F1 averaged with the labels' support as weights."""
    return _f1(y_true, y_pred, labels, sample_weight, "weighted")


def per_class_report(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each label."""
    names = _labels(y_true, y_pred, labels)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        _as_str(y_true), _as_str(y_pred), labels=names, sample_weight=sample_weight, zero_division=0
    )
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": float(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }


def confusion_matrix(y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None) -> np.ndarray:
    """Counts with rows = true label and columns = predicted label, in ``labels`` order."""
    return np.asarray(
        skm.confusion_matrix(_as_str(y_true), _as_str(y_pred), labels=_labels(y_true, y_pred, labels))
    )


def coverage(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> float:
    """Share of items that got a label (not abstained, not unparseable)."""
    covered = np.asarray([v is not None for v in np.asarray(y_pred, dtype=object)], dtype=float)
    return float(np.average(covered, weights=sample_weight)) if covered.size else float("nan")


def _positions(y_true: Any, y_pred: Any, labels: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, Any]:
    """Label positions of the covered items (ordinal metrics need a label on both sides)."""
    names = _labels(y_true, y_pred, labels)
    index = {name: i for i, name in enumerate(names)}
    true = np.asarray(y_true, dtype=object)
    pred = np.asarray(y_pred, dtype=object)
    keep = np.asarray([p is not None for p in pred], dtype=bool)
    unknown = {str(v) for v in true[keep]} - index.keys()
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not in the label order {names}")
    t = np.asarray([index[str(v)] for v in true[keep]], dtype=float)
    p = np.asarray([index[str(v)] for v in pred[keep]], dtype=float)
    return t, p, keep


def _weights(sample_weight: Any, keep: np.ndarray) -> Any:
    return None if sample_weight is None else np.asarray(sample_weight, dtype=float)[keep]


def mae(y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None) -> float:
    """Mean absolute distance in label positions, over covered items."""
    t, p, keep = _positions(y_true, y_pred, labels)
    return float(np.average(np.abs(t - p), weights=_weights(sample_weight, keep))) if t.size else float("nan")


def rmse(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> float:
    """Root mean squared distance in label positions, over covered items."""
    t, p, keep = _positions(y_true, y_pred, labels)
    if not t.size:
        return float("nan")
    return float(np.sqrt(np.average((t - p) ** 2, weights=_weights(sample_weight, keep))))


def off_by_one_accuracy(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> float:
    """Share of covered items at most one label position away from the truth."""
    t, p, keep = _positions(y_true, y_pred, labels)
    close = (np.abs(t - p) <= 1).astype(float)
    return float(np.average(close, weights=_weights(sample_weight, keep))) if t.size else float("nan")


def quadratic_weighted_kappa(
    y_true: Any, y_pred: Any, *, labels: Sequence[str] | None = None, sample_weight: Any = None
) -> float:
    """Cohen's kappa with quadratic weights, over covered items."""
    t, p, keep = _positions(y_true, y_pred, labels)
    if not t.size:
        return float("nan")
    n_labels = len(_labels(y_true, y_pred, labels))
    with warnings.catch_warnings():
        # Undefined when truth and prediction are one and the same constant: NaN says so.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return float(
            skm.cohen_kappa_score(
                t.astype(int),
                p.astype(int),
                labels=list(range(n_labels)),
                weights="quadratic",
                sample_weight=_weights(sample_weight, keep),
            )
        )


def _proba_matrix(y_proba: Any) -> np.ndarray:
    proba = np.asarray(y_proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"y_proba must have shape (n_samples, n_labels), got {proba.shape}")
    return proba


def _covered_rows(y_true: Any, proba: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows with probabilities (NaN rows are unparseable outputs) and their true label index."""
    index = {label: i for i, label in enumerate(labels)}
    keep = ~np.isnan(proba).any(axis=1)
    true = np.asarray([index[str(v)] for v in np.asarray(y_true, dtype=object)])
    return proba[keep], true[keep]


def expected_calibration_error(
    y_true: Any, y_proba: Any, *, labels: Sequence[str], n_bins: int = 10
) -> float:
    """Top-label ECE: |accuracy - confidence| averaged over equal-width confidence bins."""
    proba, true = _covered_rows(y_true, _proba_matrix(y_proba), labels)
    if not len(true):
        return float("nan")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == true).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total)


def brier_score(y_true: Any, y_proba: Any, *, labels: Sequence[str]) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot truth (summed over labels)."""
    proba, true = _covered_rows(y_true, _proba_matrix(y_proba), labels)
    if not len(true):
        return float("nan")
    onehot = np.eye(len(labels))[true]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def log_loss(y_true: Any, y_proba: Any, *, labels: Sequence[str]) -> float:
    """Mean negative log probability of the true label (clipped away from 0)."""
    proba, true = _covered_rows(y_true, _proba_matrix(y_proba), labels)
    if not len(true):
        return float("nan")
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return float(skm.log_loss(true, clipped, labels=list(range(len(labels)))))
