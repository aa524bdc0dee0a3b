"""Evaluation: metrics, statistical comparison, prompt experiments and fine-tuning gaps."""

from ._compare import compare_predictions, verdict
from ._evaluate import DatasetRef, EvalCard, LabelledData, evaluate, evaluate_predictions, load_labelled
from ._metrics import (
    accuracy,
    brier_score,
    confusion_matrix,
    coverage,
    expected_calibration_error,
    log_loss,
    macro_f1,
    mae,
    off_by_one_accuracy,
    per_class_report,
    quadratic_weighted_kappa,
    rmse,
    weighted_f1,
)
from ._stats import Estimate, PairedTest, bootstrap_interval, mcnemar, paired_bootstrap

__all__ = [
    "DatasetRef",
    "Estimate",
    "EvalCard",
    "LabelledData",
    "PairedTest",
    "accuracy",
    "bootstrap_interval",
    "brier_score",
    "compare_predictions",
    "confusion_matrix",
    "coverage",
    "evaluate",
    "evaluate_predictions",
    "expected_calibration_error",
    "load_labelled",
    "log_loss",
    "macro_f1",
    "mae",
    "mcnemar",
    "off_by_one_accuracy",
    "paired_bootstrap",
    "per_class_report",
    "quadratic_weighted_kappa",
    "rmse",
    "verdict",
    "weighted_f1",
]
