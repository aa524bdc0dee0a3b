from ._export import export_feedback
from ._store import (
    OVERRIDDEN,
    Bucket,
    EventRecord,
    FeedbackCounts,
    FeedbackEventRow,
    FeedbackRecord,
    FeedbackRow,
    PredictionRow,
    PredictionStore,
    true_label,
)

__all__ = [
    "Bucket",
    "EventRecord",
    "FeedbackCounts",
    "FeedbackEventRow",
    "FeedbackRecord",
    "FeedbackRow",
    "OVERRIDDEN",
    "PredictionRow",
    "PredictionStore",
    "export_feedback",
    "true_label",
]
