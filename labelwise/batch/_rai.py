"""Responsible-AI analysis of scored, labelled data: where a classifier works, and where it fails.

Metrics are disaggregated by cohort with Fairlearn's ``MetricFrame`` (groups, differences and
ratios with bootstrap intervals). Groups smaller than ``min_group_size`` get their point values
and a ``SmallGroupWarning`` but are left out of intervals and differences: a between-group gap
computed from a handful of items says more about chance than about the classifier.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import evaluation as m
from ..core import LabelwiseError
from ..evaluation import as_labels, evaluate_predictions, most_frequent_baseline
from ..packaging import ClassifierArtifact, as_label, load_artifact, probability_matrix
from ._cohorts import as_cohort, text_descriptors
from ._score import ScoredTable, read_probabilities, read_scored

__all__ = [
    "RaiData",
    "SmallGroupWarning",
    "calibration_analysis",
    "cohort_metrics",
    "error_analysis",
]

EXAMPLE_CHARS = 300


class SmallGroupWarning(UserWarning):
    """A cohort group holds too few items for its metrics to be trusted."""


@dataclass(frozen=True)
class RaiData:
    """Scored rows with their true labels, predictions, probabilities and cohorts."""

    name: str
    texts: list[str]
    truth: list[str]
    predicted: list[str | None]
    proba: np.ndarray | None  # rows x labels; NaN rows where a prediction had none
    labels: list[str]
    ordinal: bool
    cohorts: pd.DataFrame  # one categorical column per cohort
    cohort_source: str
    left_out: dict[str, int] = field(default_factory=dict)
    artifact: ClassifierArtifact | None = None  # the classifier, when it is in the model store

    @property
    def artifact_tag(self) -> str | None:
        return str(self.artifact.tag) if self.artifact is not None else None

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        label_col: str,
        text_col: str = "text",
        cohort_cols: Sequence[str] = (),
        model: str | None = None,
    ) -> RaiData:
        """A file written by ``labelwise batch score`` that also holds the true label.

        The classifier is ``model`` or else the one named in the file's ``artifact_tag`` column,
        when it is in the model store; it gives the label set and runs the robustness probes.
        """
        required = {text_col: "--text-col", label_col: "--label-col"} | {c: "--cohort" for c in cohort_cols}
        table = read_scored(path, required=required)
        if label_col == table.column("label"):
            raise LabelwiseError(
                f"{label_col!r} is the predicted-label column that batch score wrote; "
                "name the column with the true labels in --label-col"
            )
        frame, left_out = table.frame, {}
        if (status := table.get("status")) is not None:
            failed = status == "error"
            left_out["scoring failed"] = int(failed.sum())
            frame = frame[~failed]
        unlabelled = frame[label_col].isna()
        left_out["no true label"] = int(unlabelled.sum())
        frame = frame[~unlabelled].reset_index(drop=True)
        if frame.empty:
            raise LabelwiseError(f"{path}: no scored rows with a true label in {label_col!r}")
        table = dataclasses.replace(table, frame=frame)  # the rows kept, under the same prefix
        predicted = [None if pd.isna(v) else as_label(v) for v in frame[table.column("label")]]
        artifact = _artifact(model, table)
        if artifact is not None:
            labels, ordinal = list(artifact.spec.task.labels), artifact.spec.task.ordinal
        else:
            labels = sorted({str(v) for v in frame[label_col].map(as_label)} | {p for p in predicted if p})
            ordinal = False
        truth = as_labels(frame[label_col], label_set=labels, where=f"{path}: column {label_col!r}")
        texts = frame[text_col].fillna("").astype(str).tolist()
        proba = None
        probabilities = table.get("probabilities")
        if probabilities is not None and probabilities.notna().any():
            proba = probability_matrix([read_probabilities(v) for v in probabilities], labels)
        if cohort_cols:
            cohorts = pd.DataFrame({c: as_cohort(frame[c]) for c in cohort_cols})
            source = "columns " + ", ".join(cohort_cols)
        else:
            cohorts, source = text_descriptors(texts), "text descriptors"
        return cls(
            name=path.name,
            texts=texts,
            truth=truth.tolist(),
            predicted=predicted,
            proba=proba,
            labels=labels,
            ordinal=ordinal,
            cohorts=cohorts,
            cohort_source=source,
            left_out={k: v for k, v in left_out.items() if v},
            artifact=artifact,
        )

    def overall(self, *, n_resamples: int = 1000, random_state: int = 0) -> dict[str, Any]:
        estimates = evaluate_predictions(
            self.truth,
            self.predicted,
            labels=self.labels,
            ordinal=self.ordinal,
            y_proba=self.proba,
            n_resamples=n_resamples,
            random_state=random_state,
        )
        baseline = most_frequent_baseline(self.truth, labels=self.labels, ordinal=self.ordinal)
        return {
            "rows": len(self.truth),
            "metrics": {k: e.as_dict() for k, e in estimates.items()},
            "most_frequent_baseline": baseline,
        }


def _artifact(model: str | None, table: ScoredTable) -> ClassifierArtifact | None:
    if model is not None:
        return load_artifact(model)
    column = table.get("artifact_tag")
    tags = column.dropna().unique() if column is not None else []
    if len(tags) != 1:
        return None
    try:
        return load_artifact(str(tags[0]))
    except LabelwiseError:  # scored elsewhere; the analysis still runs, without probes
        return None


def _group_metrics(labels: Sequence[str], ordinal: bool) -> dict[str, Callable[[Any, Any], float]]:
    def wrap(metric: Callable[..., float]) -> Callable[[Any, Any], float]:
        # MetricFrame turns None into NaN, so abstentions travel as m.ABSTAIN and come back here.
        def call(y_true: Any, y_pred: Any) -> float:
            return metric(y_true, [None if p == m.ABSTAIN else p for p in y_pred], labels=labels)

        return functools.update_wrapper(call, metric)

    chosen = {"accuracy": wrap(m.accuracy), "weighted_f1": wrap(m.weighted_f1)}
    if ordinal:
        chosen["mae"] = wrap(m.mae)
    return chosen


def _interval(value: float, low: float | None, high: float | None) -> dict[str, Any]:
    """A value and its interval; ``None`` bounds where there is none (a group too small for one)."""
    return {
        "value": float(value),
        "low": None if low is None else float(low),
        "high": None if high is None else float(high),
    }


def _largest_gap(
    metric: Callable[[Any, Any], float],
    truth: np.ndarray,
    predicted: np.ndarray,
    names: np.ndarray,
    compared: Sequence[str],
    *,
    n_boot: int,
    random_state: int,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The largest difference between two groups, with an interval that can cover 0.

    The pair is the best and the worst group on this data; the interval is a bootstrap of their
    *signed* difference (each group resampled on its own), at a level corrected (Bonferroni) for
    the pairs it was chosen among. A bootstrap of the maximum absolute difference is biased
    upward and never covers 0, even for equal groups. The p-value is a permutation test of the
    maximum difference itself: how often shuffling group membership gives a gap as large.
    """
    rng = np.random.default_rng(random_state)
    members = {g: np.flatnonzero(names == g) for g in compared}
    values = {g: metric(truth[i], predicted[i]) for g, i in members.items()}
    high, low = max(compared, key=values.__getitem__), min(compared, key=values.__getitem__)
    gap = values[high] - values[low]
    pairs = len(compared) * (len(compared) - 1) // 2
    tail = (1 - confidence) / pairs / 2
    differences, ratios = [], []
    for _ in range(n_boot):
        on_high = rng.choice(members[high], size=len(members[high]))
        on_low = rng.choice(members[low], size=len(members[low]))
        value_high, value_low = (
            metric(truth[on_high], predicted[on_high]),
            metric(truth[on_low], predicted[on_low]),
        )
        differences.append(value_high - value_low)
        ratios.append(value_low / value_high if value_high else np.nan)
    pooled = np.concatenate(list(members.values()))
    shuffled_names = names[pooled]
    as_large = 0
    for _ in range(n_boot):
        shuffled_names = rng.permutation(shuffled_names)
        shuffled = [
            metric(truth[pooled[shuffled_names == g]], predicted[pooled[shuffled_names == g]])
            for g in compared
        ]
        as_large += max(shuffled) - min(shuffled) >= gap - 1e-12
    low_q, high_q = np.quantile(differences, [tail, 1 - tail])
    difference = {
        **_interval(gap, low_q, high_q),
        "groups": [high, low],
        "p_value": (as_large + 1) / (n_boot + 1),
    }
    ratio = None
    if values[high] and not np.isnan(ratios).any():
        r_low, r_high = np.quantile(ratios, [tail, 1 - tail])
        ratio = {**_interval(values[low] / values[high], r_low, r_high), "groups": [low, high]}
    return {"difference": difference, "ratio": ratio}


def cohort_metrics(
    data: RaiData,
    cohort: str,
    *,
    min_group_size: int = 30,
    n_boot: int = 100,
    random_state: int = 0,
) -> dict[str, Any]:
    """Metrics per group of one cohort, and the largest difference and smallest ratio between groups."""
    try:
        from fairlearn.metrics import MetricFrame
    except ImportError:
        raise LabelwiseError("the RAI analysis needs Fairlearn: pip install 'labelwise[rai]'") from None

    groups = data.cohorts[cohort]
    metrics = _group_metrics(data.labels, data.ordinal)
    truth = np.asarray(data.truth, dtype=object)
    predicted = np.asarray([m.ABSTAIN if p is None else p for p in data.predicted], dtype=object)
    counts = groups.value_counts()
    small = [str(g) for g in groups.cat.categories if 0 < counts.get(g, 0) < min_group_size]
    trusted = groups.isin([g for g in groups.cat.categories if counts.get(g, 0) >= min_group_size])
    names = groups.astype(str).to_numpy()
    point = MetricFrame(metrics=metrics, y_true=truth, y_pred=predicted, sensitive_features=names)
    bootstrapped = None
    if trusted.any():
        bootstrapped = MetricFrame(
            metrics=metrics,
            y_true=truth[trusted.to_numpy()],
            y_pred=predicted[trusted.to_numpy()],
            sensitive_features=names[trusted.to_numpy()],
            n_boot=n_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=random_state,
        )
    rows = []
    for group in (str(g) for g in groups.cat.categories if counts.get(g, 0)):
        values = {}
        for metric in metrics:
            value = float(point.by_group.loc[group, metric])
            low: float | None
            high: float | None
            if bootstrapped is not None and group not in small:
                low, high = (float(frame.loc[group, metric]) for frame in bootstrapped.by_group_ci)
            else:
                low = high = None
            values[metric] = _interval(value, low, high)
        rows.append({"group": group, "count": int(counts[group]), "small": group in small, "metrics": values})
    result: dict[str, Any] = {"cohort": cohort, "groups": rows, "difference": None, "ratio": None}
    compared = sorted(set(groups[trusted].astype(str)))
    result["compared_groups"] = compared
    if len(compared) >= 2:
        gaps = {
            name: _largest_gap(
                metric, truth, predicted, names, compared, n_boot=n_boot, random_state=random_state
            )
            for name, metric in metrics.items()
        }
        result["difference"] = {name: gap["difference"] for name, gap in gaps.items()}
        result["ratio"] = {name: gap["ratio"] for name, gap in gaps.items() if gap["ratio"] is not None}
    if small:
        message = (
            f"cohort {cohort!r}: {', '.join(small)} hold fewer than {min_group_size} items; "
            "their metrics have no interval and are left out of the differences"
        )
        warnings.warn(SmallGroupWarning(message), stacklevel=2)
        result["warning"] = message
    return result


def _examples(indices: np.ndarray, texts: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    chosen = np.sort(rng.choice(indices, size=min(count, len(indices)), replace=False))
    return [snippet(texts[i]) for i in chosen]


def snippet(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def error_analysis(
    data: RaiData,
    cohorts: Sequence[dict[str, Any]],
    *,
    top: int = 5,
    examples: int = 3,
    random_state: int = 0,
) -> dict[str, Any]:
    """The worst-served cohort groups, the most confused label pairs, and abstentions, with examples."""
    rng = np.random.default_rng(random_state)
    overall = m.accuracy(data.truth, data.predicted)
    groups = [
        {"cohort": c["cohort"], "group": g["group"], "count": g["count"], **g["metrics"]["accuracy"]}
        for c in cohorts
        for g in c["groups"]
        if not g["small"]
    ]
    worst = sorted(groups, key=lambda g: g["value"])[:top]
    for group in worst:
        group["gap_to_overall"] = group["value"] - overall
    matrix = m.confusion_matrix(data.truth, data.predicted, labels=data.labels)
    support = matrix.sum(axis=1)
    truth = np.asarray(data.truth, dtype=object)
    predicted = np.asarray(data.predicted, dtype=object)
    pairs = [
        (int(matrix[i, j]), i, j)
        for i in range(len(data.labels))
        for j in range(len(data.labels))
        if i != j and matrix[i, j]
    ]
    confused = []
    for count, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))[:top]:
        where = np.flatnonzero((truth == data.labels[i]) & (predicted == data.labels[j]))
        confused.append(
            {
                "true": data.labels[i],
                "predicted": data.labels[j],
                "count": count,
                "share_of_true": count / support[i],
                "examples": _examples(where, data.texts, examples, rng),
            }
        )
    abstained = np.flatnonzero(predicted == None)  # noqa: E711 (element-wise comparison)
    return {
        "overall_accuracy": overall,
        "worst_groups": worst,
        "confused_pairs": confused,
        "confusion_matrix": matrix.tolist(),
        "abstentions": {"count": len(abstained), "examples": _examples(abstained, data.texts, examples, rng)},
    }


def calibration_analysis(data: RaiData, *, n_bins: int = 10) -> dict[str, Any] | None:
    """Reliability of the top label's probability: per-bin confidence against accuracy, ECE, Brier."""
    if data.proba is None:
        return None
    truth = np.asarray(data.truth, dtype=object)
    has = ~np.isnan(data.proba).any(axis=1)
    if not has.any():
        return None
    proba, truth = data.proba[has], truth[has]
    confidence = proba.max(axis=1)
    correct = np.asarray(data.labels, dtype=object)[proba.argmax(axis=1)] == truth
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    table = [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "count": int((bins == b).sum()),
            "confidence": float(confidence[bins == b].mean()),
            "accuracy": float(correct[bins == b].mean()),
        }
        for b in range(n_bins)
        if (bins == b).any()
    ]
    return {
        "rows": int(has.sum()),
        "expected_calibration_error": m.expected_calibration_error(
            truth, proba, labels=data.labels, n_bins=n_bins
        ),
        "brier_score": m.brier_score(truth, proba, labels=data.labels),
        "bins": table,
    }
