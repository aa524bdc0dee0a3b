from ._export import export_feedback
from ._store import FeedbackRecord, FeedbackRow, PredictionRow, PredictionStore, true_label

__all__ = [
    "FeedbackRecord",
    "FeedbackRow",
    "PredictionRow",
    "PredictionStore",
    "export_feedback",
    "true_label",
]
