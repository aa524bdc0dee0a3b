from ._batch_api import BatchAPIRunner
from ._cache import ResultCache
from ._drift_data import load_drift_data
from ._job import BatchResult, CostEstimate, batch_score, estimate_batch_cost
from ._parts import PartsDir
from ._rai import RaiData, SmallGroupWarning, calibration_analysis, cohort_metrics, error_analysis
from ._rai_report import rai_report
from ._ray import score_parts_on_ray
from ._score import (
    OUTPUT_COLUMNS,
    ScoredTable,
    ScoreSummary,
    check_output_names,
    read_probabilities,
    read_scored,
    score_dataframe,
    score_frame,
    score_texts,
)
from ._sources import TableSource

__all__ = [
    "BatchAPIRunner",
    "BatchResult",
    "CostEstimate",
    "OUTPUT_COLUMNS",
    "PartsDir",
    "RaiData",
    "ResultCache",
    "ScoreSummary",
    "ScoredTable",
    "SmallGroupWarning",
    "TableSource",
    "batch_score",
    "calibration_analysis",
    "check_output_names",
    "cohort_metrics",
    "error_analysis",
    "estimate_batch_cost",
    "load_drift_data",
    "rai_report",
    "read_probabilities",
    "read_scored",
    "score_dataframe",
    "score_frame",
    "score_parts_on_ray",
    "score_texts",
]
