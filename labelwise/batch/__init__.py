"""Batch: scoring whole datasets, Responsible-AI analysis and drift analysis."""

from ._cache import ResultCache
from ._drift import DriftCheck, categorical_drift, numeric_drift, text_domain_drift
from ._score import OUTPUT_COLUMNS, ScoreSummary, score_dataframe, score_frame

__all__ = [
    "OUTPUT_COLUMNS",
    "DriftCheck",
    "ResultCache",
    "ScoreSummary",
    "categorical_drift",
    "numeric_drift",
    "score_dataframe",
    "score_frame",
    "text_domain_drift",
]
