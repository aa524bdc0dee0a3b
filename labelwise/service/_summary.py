"""Online evaluation: feedback counts turned into rates, accuracy and a confusion matrix."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from ..store import true_label
from ._schemas import ArtifactSummary, ConfusionMatrix, FeedbackSummary, LabelSummary

__all__ = ["BIAS_WARNING", "summarize"]

BIAS_WARNING = (
    "Feedback is a self-selected sample: people rate surprising, wrong or extreme predictions more "
    "often than ordinary ones, so these rates describe the rated predictions, not all traffic. "
    "Measure accuracy on a random labelled sample (labelwise eval) before acting on them."
)

PredictionCount = tuple[str, str | None, int]
FeedbackCount = tuple[str, str | None, str, str | None, int]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _summarize_one(
    tag: str, labels: Sequence[str], predictions: Iterable[PredictionCount], feedback: Iterable[FeedbackCount]
) -> ArtifactSummary:
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    predicted_by_label: dict[str | None, int] = defaultdict(int)
    for _, label, n in predictions:
        predicted_by_label[label] += n
    rated: dict[str | None, dict[str, int]] = defaultdict(lambda: {"up": 0, "down": 0})
    labelled = correct = 0
    for _, predicted, thumbs, correct_label, n in feedback:
        rated[predicted][thumbs] += n
        truth = true_label(predicted, thumbs, correct_label)
        if truth is None:
            continue
        labelled += n
        correct += n if truth == predicted else 0
        if truth in index and predicted in index:
            matrix[index[truth]][index[predicted]] += n
    per_label = []
    for label, i in index.items():
        right = matrix[i][i]
        per_label.append(
            LabelSummary(
                label=label,
                predictions=predicted_by_label.get(label, 0),
                feedback=sum(rated[label].values()),
                thumbs_up=rated[label]["up"],
                thumbs_down=rated[label]["down"],
                precision=_ratio(right, sum(row[i] for row in matrix)),
                recall=_ratio(right, sum(matrix[i])),
            )
        )
    total_predictions = sum(predicted_by_label.values())
    up = sum(r["up"] for r in rated.values())
    down = sum(r["down"] for r in rated.values())
    return ArtifactSummary(
        artifact_tag=tag,
        predictions=total_predictions,
        feedback=up + down,
        feedback_share=_ratio(up + down, total_predictions),
        thumbs_up=up,
        thumbs_down=down,
        thumbs_up_rate=_ratio(up, up + down),
        labelled=labelled,
        accuracy=_ratio(correct, labelled),
        confusion_matrix=ConfusionMatrix(labels=list(labels), matrix=matrix),
        per_label=per_label,
    )


def summarize(
    labels: Sequence[str], predictions: Sequence[PredictionCount], feedback: Sequence[FeedbackCount]
) -> FeedbackSummary:
    """Summaries overall and per artifact version, from the store's grouped counts."""
    tags = sorted({row[0] for row in predictions} | {row[0] for row in feedback})
    return FeedbackSummary(
        overall=_summarize_one("all", labels, predictions, feedback),
        by_artifact=[
            _summarize_one(
                tag, labels, [p for p in predictions if p[0] == tag], [f for f in feedback if f[0] == tag]
            )
            for tag in tags
        ],
        warning=BIAS_WARNING,
    )
