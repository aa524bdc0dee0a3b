"""Batch: scoring whole datasets, Responsible-AI analysis and drift analysis."""

from ._cache import ResultCache
from ._score import OUTPUT_COLUMNS, ScoreSummary, score_dataframe, score_frame

__all__ = ["OUTPUT_COLUMNS", "ResultCache", "ScoreSummary", "score_dataframe", "score_frame"]
