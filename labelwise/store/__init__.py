"""Store: the prediction log and feedback (SQLAlchemy; SQLite or PostgreSQL).

The service writes it; batch drift and ``labelwise feedback export`` read it. It imports no
BentoML, so reading the log never starts a service.
"""

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
