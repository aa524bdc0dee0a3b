"""What a deployed classifier is watched against, stored with its artifact when it is measured.

``attach_reference`` turns one evaluation on labelled data into the three attachments the later
checks read: the map from confidence to the chance of being right (accuracy without labels), the
golden set the provider canary replays, and the drift reference profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..packaging import ClassifierArtifact, Prediction, attach_many
from ._estimate import ACCURACY_ESTIMATOR, AccuracyEstimator
from ._golden import GOLDEN_SET, GoldenSet
from ._reference import REFERENCE_PROFILE, DriftData

__all__ = ["attach_reference"]


def attach_reference(
    tag: str,
    texts: Sequence[str],
    predictions: Sequence[Prediction],
    truth: Sequence[str],
    *,
    source: str,
    seed: int = 0,
    also: Mapping[str, bytes] | None = None,
) -> ClassifierArtifact:
    """Store the monitoring references of ``tag``, measured on ``texts`` with true labels ``truth``.

    ``also``: other attachments written in the same step (the eval card), so a refused set
    writes nothing.
    """
    labels, confidences = [p.label for p in predictions], [p.confidence for p in predictions]
    estimator = AccuracyEstimator.fit(labels, confidences, list(truth), reference=source)
    golden = GoldenSet.choose(texts, predictions, tag=tag, source=source, seed=seed)
    profile = DriftData.profile(texts, predictions, truth=truth, name=source, seed=seed)
    attachments = {
        **(also or {}),
        GOLDEN_SET: golden.model_dump_json(indent=1).encode(),
        REFERENCE_PROFILE: profile.to_json(),
    }
    if estimator is not None:
        attachments[ACCURACY_ESTIMATOR] = estimator.model_dump_json().encode()
    return attach_many(tag, attachments)
