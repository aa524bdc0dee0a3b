"""What drift is measured on (``DriftData``), the reference profile an artifact carries, and the
checks run together: label, confidence and length drift, text-domain drift, and accuracy estimated
beside accuracy measured.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..backends import Embedder
from ..core import LabelwiseError, wilson_interval
from ..packaging import ClassifierArtifact, Prediction, technique_for
from ._drift import DriftCheck, categorical_drift, numeric_drift, text_domain_drift
from ._estimate import AccuracyEstimator, estimate_accuracy

__all__ = ["REFERENCE_PROFILE", "DriftData", "accuracy_beside_estimate", "drift_report"]

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
