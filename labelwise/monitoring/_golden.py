"""The provider canary: a small golden set kept with the artifact, replayed against the live backend.

A provider can change the model behind a name without notice. The golden set holds texts from
the evaluation data with the predictions the artifact made on them when it was packaged (texts
and labels only; no key, no URL). Replaying it tells whether the live backend still answers as
the packaged classifier did, and whether the provider's ``system_fingerprint`` changed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from ..core import wilson_interval
from ..packaging import ClassifierArtifact, Prediction

__all__ = ["GOLDEN_SET", "CanaryRun", "Classify", "GoldenItem", "GoldenSet", "replay_golden_set"]

GOLDEN_SET = "golden_set.json"
GOLDEN_SIZE = 100
"""Texts kept: enough that a drop from 100% to 90% agreement is told from noise, few enough to
replay every few minutes at a small cost."""

Classify = Callable[[list[str]], Awaitable[list[Prediction]]]


class GoldenItem(BaseModel):
    text: str
    label: str | None
    confidence: float | None = None


class GoldenSet(BaseModel):
    """Texts and the labels the packaged classifier gave them, with what answered then."""

    artifact_tag: str
    source: str
    created_at: str
    models: list[str]
    system_fingerprints: list[str]
    items: list[GoldenItem]

    @classmethod
    def choose(
        cls, texts: Sequence[str], predictions: Sequence[Prediction], *, tag: str, source: str, seed: int = 0
    ) -> GoldenSet:
        """A seeded sample of up to ``GOLDEN_SIZE`` evaluation texts that got a label."""
        answered = [i for i, p in enumerate(predictions) if p.label is not None and texts[i].strip()]
        chosen = sorted(random.Random(seed).sample(answered, min(GOLDEN_SIZE, len(answered))))
        picked = [predictions[i] for i in chosen]
        items = [
            GoldenItem(text=texts[i], label=p.label, confidence=p.confidence)
            for i, p in zip(chosen, picked, strict=True)
        ]
        return cls(
            artifact_tag=tag,
            source=source,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            models=sorted({p.model for p in picked if p.model}),
            system_fingerprints=sorted({p.system_fingerprint for p in picked if p.system_fingerprint}),
            items=items,
        )

    @classmethod
    def attached_to(cls, artifact: ClassifierArtifact) -> GoldenSet | None:
        data = artifact.attachments.get(GOLDEN_SET)
        return None if data is None else cls.model_validate(json.loads(data))


class CanaryRun(BaseModel):
    """One replay of the golden set: what the live backend answered against what was packaged."""

    artifact_tag: str
    ran_at: str
    items: int
    agreed: int
    agreement: float
    agreement_low: float
    agreement_high: float
    packaged_labels: list[str | None]
    live_labels: list[str | None]
    models: list[str]
    system_fingerprints: list[str]
    packaged_fingerprints: list[str]
    fingerprint_changed: bool = Field(
        description="The provider answered with a fingerprint it did not give at packaging."
    )


async def replay_golden_set(golden: GoldenSet, classify: Classify, *, tag: str) -> CanaryRun:
    """Classify the golden texts again (a backend failure raises, as classifying does)."""
    predictions = await classify([item.text for item in golden.items])
    packaged = [item.label for item in golden.items]
    live = [p.label for p in predictions]
    agreed = sum(a == b for a, b in zip(packaged, live, strict=True))
    low, high = wilson_interval(agreed, len(live)) or (0.0, 1.0)
    fingerprints = sorted({p.system_fingerprint for p in predictions if p.system_fingerprint})
    return CanaryRun(
        artifact_tag=tag,
        ran_at=datetime.now(UTC).isoformat(timespec="seconds"),
        items=len(live),
        agreed=agreed,
        agreement=agreed / len(live) if live else 1.0,
        agreement_low=low,
        agreement_high=high,
        packaged_labels=packaged,
        live_labels=live,
        models=sorted({p.model for p in predictions if p.model}),
        system_fingerprints=fingerprints,
        packaged_fingerprints=golden.system_fingerprints,
        fingerprint_changed=bool(set(fingerprints) - set(golden.system_fingerprints)),
    )
