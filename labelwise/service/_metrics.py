"""Prometheus metrics of the service.

Defined at module level: under ``bentoml serve`` each worker writes them to the multiprocess
directory and ``/metrics`` sums them across workers. Label values are bounded: the artifact tag
(one per service), labels of the artifact's label set plus ``none``, and fixed kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from ..packaging import Prediction

__all__ = [
    "ABSTENTIONS",
    "CANARY_AGREEMENT",
    "CANARY_AGREEMENT_HIGH",
    "CANARY_ALARM",
    "CANARY_FAILURES",
    "CANARY_FINGERPRINT_CHANGED",
    "CANARY_LAST_RUN",
    "ESTIMATED_ACCURACY",
    "ESTIMATED_ACCURACY_LOW",
    "ESTIMATE_TRUSTED",
    "REFERENCE_ACCURACY",
    "BACKEND_ERRORS",
    "BACKEND_LATENCY",
    "BACKEND_RETRIES",
    "CONFIDENCE",
    "COST",
    "FEEDBACK",
    "FEEDBACK_EVENTS",
    "FEEDBACK_WRITES",
    "ONLINE_ACCURACY",
    "PREDICTIONS",
    "PredictionMetrics",
    "TOKENS",
]

PREDICTIONS = Counter(
    "labelwise_predictions_total",
    "Predictions answered, by predicted label ('none': no label).",
    ["artifact", "label"],
)
ABSTENTIONS = Counter(
    "labelwise_abstentions_total",
    "Predictions without a label, by why (unparseable output, empty text, ...).",
    ["artifact", "reason"],
)
CONFIDENCE = Histogram(
    "labelwise_prediction_confidence",
    "Probability of the predicted label (scoring modes with probabilities).",
    ["artifact"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
BACKEND_LATENCY = Histogram(
    "labelwise_backend_latency_seconds",
    "Time from sending a text to the backend to having its label, retries included.",
    ["artifact"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BACKEND_ERRORS = Counter(
    "labelwise_backend_errors_total",
    "Backend failures that reached the client, by kind.",
    ["artifact", "kind"],
)
BACKEND_RETRIES = Counter(
    "labelwise_backend_retries_total", "Backend calls retried, by kind.", ["artifact", "kind"]
)
TOKENS = Counter("labelwise_tokens_total", "Tokens used, by kind (prompt, completion).", ["artifact", "kind"])
COST = Counter(
    "labelwise_estimated_cost_usd_total",
    "Estimated spend from token counts and the artifact's backend prices.",
    ["artifact"],
)
FEEDBACK_WRITES = Counter(
    "labelwise_feedback_writes_total",
    "Feedback writes accepted, by thumbs and predicted label; replacing feedback is a write too.",
    ["artifact", "thumbs", "label"],
)
FEEDBACK_EVENTS = Counter(
    "labelwise_feedback_events_total",
    "Implicit feedback events (accepted, overridden, clicked, ...), by signal (LABELWISE_FEEDBACK_SIGNALS).",
    ["artifact", "signal"],
)
FEEDBACK = Gauge(
    "labelwise_feedback",
    "Predictions that hold feedback now, by thumbs (replaced feedback counts as its latest thumbs).",
    ["artifact", "thumbs"],
    multiprocess_mode="mostrecent",
)
ONLINE_ACCURACY = Gauge(
    "labelwise_online_accuracy",
    "Accuracy over feedback whose true label is known (a biased sample: see /feedback/summary).",
    ["artifact"],
    multiprocess_mode="mostrecent",
)

# The monitor (one worker runs it) sets these; "mostrecent" keeps its latest value across workers.
ESTIMATED_ACCURACY = Gauge(
    "labelwise_estimated_accuracy",
    "Accuracy estimated without labels from the latest predictions' confidences (LABELWISE_ESTIMATE_WINDOW).",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
ESTIMATED_ACCURACY_LOW = Gauge(
    "labelwise_estimated_accuracy_lower_bound",
    "Lower end of the estimate's 95% interval.",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
ESTIMATE_TRUSTED = Gauge(
    "labelwise_estimated_accuracy_trusted",
    "1 when confidences are mapped to chances of being right (fitted at packaging) or calibrated, else 0.",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
REFERENCE_ACCURACY = Gauge(
    "labelwise_reference_accuracy",
    "Accuracy measured on the labelled data the artifact was packaged with (--eval).",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
CANARY_AGREEMENT = Gauge(
    "labelwise_canary_agreement",
    "Share of the golden set the live backend labels as the packaged classifier did.",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
CANARY_AGREEMENT_HIGH = Gauge(
    "labelwise_canary_agreement_high",
    "Upper bound of the canary agreement's 95% Wilson interval over the golden set.",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
CANARY_ALARM = Gauge(
    "labelwise_canary_alarm",
    "1 when the canary's verdict is an alarm (the verdict labelwise canary prints).",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
CANARY_FINGERPRINT_CHANGED = Gauge(
    "labelwise_canary_fingerprint_changed",
    "1 when the provider answered the canary with a system_fingerprint not seen at packaging.",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
CANARY_LAST_RUN = Gauge(
    "labelwise_canary_last_run_timestamp_seconds",
    "When the canary last finished (Unix time).",
    ["artifact"],
    multiprocess_mode="mostrecent",
)
CANARY_FAILURES = Counter(
    "labelwise_canary_failures_total", "Canary runs that failed (backend errors).", ["artifact"]
)


class PredictionMetrics:
    """Counts each answered prediction of one served artifact in the series above.

    A series' labelled child is looked up once and kept: ``labels()`` takes a lock and builds a
    key on every call, on the request path.
    """

    def __init__(self, tag: str, cost_usd: Callable[[int, int], float]) -> None:
        self.tag = tag
        self._cost_usd = cost_usd
        self._confidence = CONFIDENCE.labels(tag)
        self._latency = BACKEND_LATENCY.labels(tag)
        self._prompt_tokens = TOKENS.labels(tag, "prompt")
        self._completion_tokens = TOKENS.labels(tag, "completion")
        self._cost = COST.labels(tag)
        self._children: dict[tuple[Any, str], Any] = {}

    def _child(self, series: Counter, value: str) -> Any:
        key = (series, value)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = series.labels(self.tag, value)
        return child

    def count(self, prediction: Prediction) -> None:
        self._child(PREDICTIONS, prediction.label if prediction.label is not None else "none").inc()
        if prediction.reason is not None:
            self._child(ABSTENTIONS, prediction.reason).inc()
        if prediction.confidence is not None:
            self._confidence.observe(prediction.confidence)
        self._latency.observe(prediction.latency_s)
        self._prompt_tokens.inc(prediction.prompt_tokens)
        self._completion_tokens.inc(prediction.completion_tokens)
        self._cost.inc(self._cost_usd(prediction.prompt_tokens, prediction.completion_tokens))
