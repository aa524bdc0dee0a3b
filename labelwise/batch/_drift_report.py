"""Loading scored data for drift analysis, running every check, and the report (JSON and HTML)."""

from __future__ import annotations

import html
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core import wilson_interval
from ..evaluation import as_label
from ..packaging import (
    AccuracyEstimator,
    ClassifierArtifact,
    Embedder,
    LabelwiseError,
    Prediction,
    estimate_accuracy,
    technique_for,
)
from ._drift import DriftCheck, categorical_drift, numeric_drift, text_domain_drift
from ._score import read_probabilities, read_scored

__all__ = [
    "REFERENCE_PROFILE",
    "DriftData",
    "ACCURACY_COLUMNS",
    "accuracy_beside_estimate",
    "accuracy_rows",
    "drift_report",
    "load_drift_data",
    "write_drift_report",
]

# The artifact attachment that holds the reference profile, recorded when packaging with --eval.
REFERENCE_PROFILE = "reference_profile.json"
PROFILE_ROWS = 5000


@dataclass(frozen=True)
class DriftData:
    """What drift is measured on: predicted labels, their confidence, text lengths, the texts."""

    name: str
    labels: list[str | None]
    confidence: list[float]
    lengths: list[int]
    texts: list[str] | None
    truth: list[str | None] | None = None
    """True labels, where the data has them: then accuracy is measured beside the estimate."""

    @classmethod
    def profile(
        cls,
        texts: Sequence[str],
        predictions: Sequence[Prediction],
        *,
        truth: Sequence[str],
        name: str,
        seed: int = 0,
    ) -> DriftData:
        """What the classifier did on its evaluation data, without the texts (artifacts travel)."""
        rows = list(range(len(texts)))
        if len(rows) > PROFILE_ROWS:
            rows = sorted(random.Random(seed).sample(rows, PROFILE_ROWS))
        chosen = [predictions[i] for i in rows]
        return cls(
            name=f"reference profile ({name}, {len(rows)} predictions)",
            labels=[p.label for p in chosen],
            confidence=[float("nan") if p.confidence is None else p.confidence for p in chosen],
            lengths=[len(texts[i]) for i in rows],
            texts=None,
            truth=[truth[i] for i in rows],
        )

    def to_json(self) -> bytes:
        confidence = [None if np.isnan(c) else c for c in self.confidence]
        return json.dumps({**asdict(self), "confidence": confidence}).encode()

    @classmethod
    def from_artifact(cls, artifact: ClassifierArtifact) -> DriftData:
        if REFERENCE_PROFILE not in artifact.attachments:
            raise LabelwiseError(
                f"{artifact.tag} has no reference profile: package it with --eval DATA, or pass --reference"
            )
        data = json.loads(artifact.attachments[REFERENCE_PROFILE])
        data["confidence"] = [float("nan") if c is None else c for c in data["confidence"]]
        return cls(**data)


def _confidence(raw: Any) -> float:
    probabilities = read_probabilities(raw)
    return max(probabilities.values()) if probabilities else float("nan")


def load_drift_data(
    source: str, *, text_col: str = "text", label_col: str | None = None, since: datetime | None = None
) -> DriftData:
    """A scored file (from ``labelwise batch score``) or the service's prediction store (a DB URL).

    ``label_col``: the scored file's column of true labels, when it has one.
    """
    if "://" in source:
        from ..store import PredictionStore

        store = PredictionStore.from_url(source)
        try:
            rows = list(store.predictions(since=since))
        finally:
            store.close()
        if label_col is not None:
            raise LabelwiseError("--label-col needs a scored file: the prediction store holds no true labels")
        if not rows:
            raise LabelwiseError(
                f"no predictions in {source.split('://')[0]} store" + (f" since {since}" if since else "")
            )
        texts = [r.text for r in rows]
        return DriftData(
            name=f"prediction log ({len(rows)} predictions)",
            labels=[r.label for r in rows],
            confidence=[r.confidence if r.confidence is not None else float("nan") for r in rows],
            lengths=[r.text_length for r in rows],
            texts=None if any(t is None for t in texts) else [str(t) for t in texts],
        )
    path = Path(source)
    required = {text_col: "--text-col", **({label_col: "--label-col"} if label_col else {})}
    table = read_scored(path, required=required)
    frame = table.frame
    found = table.get("probabilities")
    probabilities = found.tolist() if found is not None else [None] * len(frame)
    texts = frame[text_col].fillna("").astype(str).tolist()
    return DriftData(
        name=path.name,
        labels=[
            None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in frame[table.column("label")]
        ],
        confidence=[_confidence(p) for p in probabilities],
        lengths=[len(t) for t in texts],
        texts=texts,
        truth=None if label_col is None else [None if pd.isna(v) else as_label(v) for v in frame[label_col]],
    )


def accuracy_beside_estimate(
    data: DriftData, estimator: AccuracyEstimator | None, uncalibrated_because: str | None
) -> dict[str, Any]:
    """Accuracy estimated from confidences, and measured where the data has true labels."""
    estimate = estimate_accuracy(
        data.labels, data.confidence, estimator=estimator, uncalibrated_because=uncalibrated_because
    )
    measured = None
    known = [(p, t) for p, t in zip(data.labels, data.truth or [], strict=False) if t is not None]
    if known:
        right = sum(p == t for p, t in known)
        low, high = wilson_interval(right, len(known)) or (0.0, 1.0)
        measured = {"value": right / len(known), "low": low, "high": high, "labelled": len(known)}
    return {"data": data.name, "estimated": estimate.model_dump(), "measured": measured}


def drift_report(
    reference: DriftData,
    current: DriftData,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    artifact: ClassifierArtifact | None = None,
) -> dict[str, Any]:
    """Every check; with an ``embedder`` the texts are also compared as embeddings.

    With the ``artifact``, accuracy is estimated on both sides through its fitted estimator.
    """
    checks: list[DriftCheck] = categorical_drift(reference.labels, current.labels)
    checks += numeric_drift(reference.confidence, current.confidence, feature="confidence")
    checks += numeric_drift(reference.lengths, current.lengths, feature="text_length")
    if reference.texts is not None and current.texts is not None:
        checks.append(text_domain_drift(reference.texts, current.texts))
        if embedder is not None:
            checks.append(text_domain_drift(reference.texts, current.texts, embed=embedder.embed))
    return {
        "model": model,
        "reference": reference.name,
        "current": current.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "drifted": any(c.drifted for c in checks),
        "checks": [asdict(c) for c in checks],
        "accuracy": _accuracy_section(reference, current, artifact),
    }


def _accuracy_section(
    reference: DriftData, current: DriftData, artifact: ClassifierArtifact | None
) -> list[dict[str, Any]]:
    why: str | None = "no --model given, so its calibration is unknown"
    estimator = None
    if artifact is not None:
        estimator = AccuracyEstimator.attached_to(artifact)
        why = technique_for(artifact.spec).uncalibrated_because(artifact.spec)
    return [
        {"side": side, **accuracy_beside_estimate(data, estimator, why)}
        for side, data in (("reference", reference), ("current", current))
    ]


def _plots(reference: DriftData, current: DriftData) -> list[tuple[str, str]]:
    from ..reports import figure_uri, pyplot

    plt = pyplot()
    sections = []
    categories = sorted({str(v) for v in reference.labels + current.labels})
    figure, axis = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(categories))
    for offset, (data, name) in enumerate(((reference, "reference"), (current, "current"))):
        values = [str(v) for v in data.labels]
        shares = [values.count(c) / max(len(values), 1) for c in categories]
        axis.bar(x + (offset - 0.5) * 0.4, shares, width=0.4, label=name)
    axis.set_xticks(x, categories)
    axis.set_ylabel("share of predictions")
    axis.legend()
    sections.append(("Predicted labels", f"<img src='{figure_uri(figure)}' alt='predicted label shares'>"))
    for feature, attribute in (("Confidence", "confidence"), ("Text length", "lengths")):
        ref = np.asarray(getattr(reference, attribute), dtype=float)
        cur = np.asarray(getattr(current, attribute), dtype=float)
        ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
        if not len(ref) or not len(cur):
            continue
        figure, axis = plt.subplots(figsize=(7, 3.5))
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        axis.hist(ref, bins=bins, alpha=0.6, density=True, label="reference")
        axis.hist(cur, bins=bins, alpha=0.6, density=True, label="current")
        axis.set_xlabel(feature.lower())
        axis.legend()
        sections.append((feature, f"<img src='{figure_uri(figure)}' alt='{feature.lower()} distributions'>"))
    return sections


CHECK_COLUMNS = ("feature", "test", "statistic", "p-value", "drift when")


def check_cells(check: dict[str, Any]) -> list[str]:
    """A drift check as table cells, in ``CHECK_COLUMNS`` order; a check that did not run shows n/a."""
    statistic, p_value = check["statistic"], check["p_value"]
    return [
        check["feature"],
        check["test"],
        "n/a" if math.isnan(statistic) else f"{statistic:.4g}",
        "" if p_value is None else f"{p_value:.3g}",
        check["rule"],
    ]


def write_drift_report(
    report: dict[str, Any], reference: DriftData, current: DriftData, out: Path
) -> list[Path]:
    """``out`` (HTML, with plots) and the same name with ``.json``."""
    from ..reports import html_table, write_report

    rows = [[*check_cells(c), "DRIFT" if c["drifted"] else "ok"] for c in report["checks"]]
    verdict = "Drift detected" if report["drifted"] else "No drift detected"
    summary = (
        f"<p><b>{verdict}</b>: current <i>{html.escape(report['current'])}</i> against reference "
        f"<i>{html.escape(report['reference'])}</i> (model {html.escape(str(report['model']))}).</p>"
    )
    sections = [
        (
            "Summary",
            summary + html_table([*CHECK_COLUMNS, "verdict"], rows),
        )
    ]
    sections.append(("Accuracy: estimated without labels, measured where labelled", _accuracy_table(report)))
    sections += _plots(reference, current)
    return write_report(out, "Drift report", sections, report)


def _span(value: float | None, low: float | None, high: float | None) -> str:
    return "-" if value is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def accuracy_rows(report: dict[str, Any]) -> list[list[str]]:
    """The accuracy section as rows: side, estimated [95%], measured [95%], predictions, method."""
    rows = []
    for row in report["accuracy"]:
        estimated, measured = row["estimated"], row["measured"]
        rows.append([
            row["side"],
            _span(estimated["value"], estimated["low"], estimated["high"]),
            "no labels" if measured is None else _span(measured["value"], measured["low"], measured["high"]),
            str(estimated["predictions"]),
            estimated["method"],
        ])  # fmt: skip
    return rows


ACCURACY_COLUMNS = (
    "data",
    "estimated accuracy [95%]",
    "measured accuracy [95%]",
    "predictions",
    "estimated by",
)


def _accuracy_table(report: dict[str, Any]) -> str:
    from ..reports import html_table

    warnings = {row["estimated"]["warning"] for row in report["accuracy"]} - {None}
    notes = "".join(f"<p class='note'><b>Warning:</b> {html.escape(w)}</p>" for w in sorted(warnings))
    current = report["accuracy"][-1]["estimated"]["per_label"]
    precision = [
        [label, str(row["predictions"]), _span(row["precision"], row["low"], row["high"])]
        for label, row in current.items()
    ]
    per_label = "<p>Estimated precision of each predicted label, current data:</p>" + html_table(
        ("predicted label", "predictions", "estimated precision [95%]"), precision
    )
    return html_table(ACCURACY_COLUMNS, accuracy_rows(report)) + notes + (per_label if precision else "")
