from ._attach import attach_reference
from ._canary import canary_gauges, canary_verdict
from ._drift import DriftCheck, categorical_drift, numeric_drift, text_domain_drift
from ._estimate import (
    ACCURACY_ESTIMATOR,
    AccuracyEstimate,
    AccuracyEstimator,
    LabelEstimate,
    estimate_accuracy,
)
from ._golden import GOLDEN_SET, CanaryRun, Classify, GoldenItem, GoldenSet, replay_golden_set
from ._reference import REFERENCE_PROFILE, DriftData, accuracy_beside_estimate, drift_report
from ._summary import (
    BIAS_WARNING,
    ArtifactSummary,
    ConfusionMatrix,
    FeedbackSummary,
    Interval,
    LabelSummary,
    SeriesPoint,
    SignalSummary,
    Window,
    feedback_summary,
    summarize,
    wilson,
)

__all__ = [
    "ACCURACY_ESTIMATOR",
    "AccuracyEstimate",
    "AccuracyEstimator",
    "ArtifactSummary",
    "BIAS_WARNING",
    "CanaryRun",
    "Classify",
    "ConfusionMatrix",
    "DriftCheck",
    "DriftData",
    "FeedbackSummary",
    "GOLDEN_SET",
    "GoldenItem",
    "GoldenSet",
    "Interval",
    "LabelEstimate",
    "LabelSummary",
    "REFERENCE_PROFILE",
    "SeriesPoint",
    "SignalSummary",
    "Window",
    "accuracy_beside_estimate",
    "attach_reference",
    "canary_gauges",
    "canary_verdict",
    "categorical_drift",
    "drift_report",
    "estimate_accuracy",
    "feedback_summary",
    "numeric_drift",
    "replay_golden_set",
    "summarize",
    "text_domain_drift",
    "wilson",
]
