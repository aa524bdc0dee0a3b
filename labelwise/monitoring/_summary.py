"""Online evaluation: the store's grouped counts turned into rates, accuracy and time series.

Every rate comes with its count and a Wilson interval, so a bucket with three ratings does not
read like one with three thousand.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from ..core import LabelwiseError, Settings, wilson_interval
from ..store import Bucket, FeedbackCounts, PredictionStore, true_label

__all__ = [
    "feedback_summary",
    "BIAS_WARNING",
    "ArtifactSummary",
    "ConfusionMatrix",
    "FeedbackSummary",
    "Interval",
    "LabelSummary",
    "SeriesPoint",
    "SignalSummary",
    "Window",
    "summarize",
    "wilson",
]

BIAS_WARNING = (
    "Feedback is a self-selected sample: people rate surprising, wrong or extreme predictions more "
    "often than ordinary ones, so these rates describe the rated predictions, not all traffic. "
    "Measure accuracy on a random labelled sample (labelwise eval) before acting on them."
)


class Interval(BaseModel):
    low: float
    high: float


class SignalSummary(BaseModel):
    events: int
    predictions: int = Field(description="Predictions that received the signal at least once.")
    share: float | None = Field(description="Of all predictions, the share that received it.")
    share_interval: Interval | None
    mean_value: float | None = Field(description="Mean of the values sent with it, when any were.")


class Window(BaseModel):
    """What feedback says of the predictions made in a period."""

    predictions: int
    feedback: int = Field(description="Predictions with thumbs feedback.")
    feedback_share: float | None = Field(description="Share of predictions that received thumbs feedback.")
    thumbs_up: int
    thumbs_down: int
    thumbs_up_rate: float | None
    thumbs_up_interval: Interval | None = Field(description="Wilson 95% interval of the thumbs-up rate.")
    labelled: int = Field(
        description="Predictions whose true label is known: a thumbs up, a correct_label, or an override "
        "naming a label."
    )
    accuracy: float | None
    accuracy_interval: Interval | None = Field(description="Wilson 95% interval of the accuracy.")
    signals: dict[str, SignalSummary] = Field(description="Implicit signals, apart from thumbs.")


class SeriesPoint(Window):
    start: datetime = Field(description="Start of the bucket (UTC) in which the predictions were made.")


class ConfusionMatrix(BaseModel):
    labels: list[str]
    matrix: list[list[int]] = Field(description="Rows: the true label; columns: the predicted label.")


class LabelSummary(BaseModel):
    label: str
    predictions: int
    feedback: int
    thumbs_up: int
    thumbs_down: int
    precision: float | None = Field(description="Of labelled predictions of this label, the share right.")
    recall: float | None = Field(description="Of labelled items truly of this label, the share found.")


class ArtifactSummary(Window):
    artifact_tag: str
    confusion_matrix: ConfusionMatrix
    per_label: list[LabelSummary]
    series: list[SeriesPoint] = Field(description="The same figures per time bucket, oldest first.")


class FeedbackSummary(BaseModel):
    bucket: Bucket
    overall: ArtifactSummary
    by_artifact: list[ArtifactSummary]
    warning: str


def wilson(successes: int, trials: int) -> Interval | None:
    """The Wilson score 95% interval of a proportion (``None`` without trials)."""
    bounds = wilson_interval(successes, trials)
    return None if bounds is None else Interval(low=bounds[0], high=bounds[1])


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class _Tally:
    """Counts of one artifact (or all) in one bucket (or all), before they become rates."""

    predicted: Counter[str | None] = field(default_factory=Counter)
    rated: Counter[tuple[str | None, str]] = field(default_factory=Counter)  # (predicted, thumbs)
    truths: Counter[tuple[str, str | None]] = field(default_factory=Counter)  # (true, predicted)
    signals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0.0, 0]))

    def add(self, other: _Tally) -> None:
        self.predicted.update(other.predicted)
        self.rated.update(other.rated)
        self.truths.update(other.truths)
        for name, values in other.signals.items():
            mine = self.signals[name]
            for i, value in enumerate(values):
                mine[i] += value

    def window(self) -> dict[str, object]:
        predictions = sum(self.predicted.values())
        up = sum(n for (_, thumbs), n in self.rated.items() if thumbs == "up")
        down = sum(n for (_, thumbs), n in self.rated.items() if thumbs == "down")
        labelled = sum(self.truths.values())
        right = sum(n for (truth, predicted), n in self.truths.items() if truth == predicted)
        return {
            "predictions": predictions,
            "feedback": up + down,
            "feedback_share": _ratio(up + down, predictions),
            "thumbs_up": up,
            "thumbs_down": down,
            "thumbs_up_rate": _ratio(up, up + down),
            "thumbs_up_interval": wilson(up, up + down),
            "labelled": labelled,
            "accuracy": _ratio(right, labelled),
            "accuracy_interval": wilson(right, labelled),
            "signals": {
                name: SignalSummary(
                    events=int(events),
                    predictions=int(reached),
                    share=_ratio(int(reached), predictions),
                    share_interval=wilson(min(int(reached), predictions), predictions),
                    mean_value=value_sum / valued if valued else None,
                )
                for name, (events, reached, value_sum, valued) in sorted(self.signals.items())
            },
        }


def _tallies(counts: FeedbackCounts) -> dict[str, dict[datetime, _Tally]]:
    tallies: dict[str, dict[datetime, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    for tag, start, label, n in counts.predictions:
        tallies[tag][start].predicted[label] += n
    for tag, start, predicted, thumbs, correct, n in counts.thumbs:
        tally = tallies[tag][start]
        tally.rated[predicted, thumbs] += n
        truth = true_label(predicted, thumbs, correct)
        if truth is not None:
            tally.truths[truth, predicted] += n
    for tag, start, predicted, named, n in counts.overrides:
        tallies[tag][start].truths[named, predicted] += n
    for tag, start, signal, events, reached, value_sum, valued in counts.signals:
        tallies[tag][start].signals[signal] = [events, reached, value_sum, valued]
    return tallies


def _summary(
    tag: str, labels: Sequence[str], buckets: dict[datetime, _Tally], *, series: bool
) -> ArtifactSummary:
    total = _Tally()
    for tally in buckets.values():
        total.add(tally)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (truth, predicted), n in total.truths.items():
        if truth in index and predicted in index:
            matrix[index[truth]][index[predicted]] += n
    per_label = []
    for label, i in index.items():
        right = matrix[i][i]
        up, down = total.rated[label, "up"], total.rated[label, "down"]
        per_label.append(
            LabelSummary(
                label=label,
                predictions=total.predicted[label],
                feedback=up + down,
                thumbs_up=up,
                thumbs_down=down,
                precision=_ratio(right, sum(row[i] for row in matrix)),
                recall=_ratio(right, sum(matrix[i])),
            )
        )
    return ArtifactSummary.model_validate(
        {
            **total.window(),
            "artifact_tag": tag,
            "confusion_matrix": ConfusionMatrix(labels=list(labels), matrix=matrix),
            "per_label": per_label,
            "series": [
                SeriesPoint.model_validate({**buckets[start].window(), "start": start})
                for start in sorted(buckets)
                if series
            ],
        }
    )


def _merged(groups: Iterable[dict[datetime, _Tally]]) -> dict[datetime, _Tally]:
    merged: dict[datetime, _Tally] = defaultdict(_Tally)
    for buckets in groups:
        for start, tally in buckets.items():
            merged[start].add(tally)
    return merged


def summarize(
    labels: Sequence[str], counts: FeedbackCounts, *, bucket: Bucket = "day", series: bool = True
) -> FeedbackSummary:
    """Summaries overall and per artifact version from the store's counts; ``series``: with each
    one's time series too."""
    tallies = _tallies(counts)
    return FeedbackSummary(
        bucket=bucket,
        overall=_summary("all", labels, _merged(tallies.values()), series=series),
        by_artifact=[_summary(tag, labels, tallies[tag], series=series) for tag in sorted(tallies)],
        warning=BIAS_WARNING,
    )


def _labels_seen(counts: FeedbackCounts) -> list[str]:
    """The labels predicted or named by feedback: the store does not keep artifacts' label sets."""
    seen = {row[2] for row in counts.predictions} | {row[4] for row in counts.thumbs}
    seen |= {row[3] for row in counts.overrides}
    return sorted(label for label in seen if label is not None)


def feedback_summary(
    db_url: str | None, *, bucket: Bucket, since: datetime | None = None, artifact_tag: str | None = None
) -> FeedbackSummary:
    """The same summary ``/feedback/summary`` answers, read from the store directly."""
    store = PredictionStore.from_url(db_url or Settings.from_env().db_url)
    try:
        counts = store.counts(bucket=bucket, since=since, artifact_tag=artifact_tag)
    finally:
        store.close()
    if not counts.predictions:
        where = f" of {artifact_tag}" if artifact_tag else ""
        raise LabelwiseError(
            f"no predictions{where} in the store: nothing to report (check --db-url, --since)"
        )
    return summarize(_labels_seen(counts), counts, bucket=bucket)
