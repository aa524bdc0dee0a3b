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

from ..packaging import ClassifierArtifact, Embedder, LabelwiseError, Prediction
from ._drift import DriftCheck, categorical_drift, numeric_drift, text_domain_drift
from ._score import read_probabilities, read_scored

__all__ = ["REFERENCE_PROFILE", "DriftData", "drift_report", "load_drift_data", "write_drift_report"]

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

    @classmethod
    def profile(
        cls, texts: Sequence[str], predictions: Sequence[Prediction], *, name: str, seed: int = 0
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


def load_drift_data(source: str, *, text_col: str = "text", since: datetime | None = None) -> DriftData:
    """A scored file (from ``labelwise batch score``) or the service's prediction store (a DB URL)."""
    if "://" in source:
        from ..store import PredictionStore

        store = PredictionStore.from_url(source)
        try:
            rows = list(store.predictions(since=since))
        finally:
            store.close()
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
    table = read_scored(path, required={text_col: "--text-col"})
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
    )


def drift_report(
    reference: DriftData,
    current: DriftData,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Every check; with an ``embedder`` the texts are also compared as embeddings."""
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
    }


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
    sections += _plots(reference, current)
    return write_report(out, "Drift report", sections, report)
