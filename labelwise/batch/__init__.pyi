from ._batch_api import BatchAPIRunner
from ._cache import ResultCache
from ._drift_data import load_drift_data
from ._job import BatchResult, CostEstimate, Target, batch_score, estimate_batch_cost
from ._parts import PartsDir, assemble
from ._rai import RaiData, SmallGroupWarning, calibration_analysis, cohort_metrics, error_analysis
from ._rai_report import rai_report
from ._ray import score_parts_on_ray
from ._score import (
    OUTPUT_COLUMNS,
    ScoredTable,
    ScoreSummary,
    check_output_names,
    output_schema,
    read_probabilities,
    read_scored,
    score_dataframe,
    score_frame,
    score_texts,
    with_output_columns,
    with_outputs,
)
from ._sources import TableSource, filesystem_for

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
    "Target",
    "assemble",
    "batch_score",
    "calibration_analysis",
    "check_output_names",
    "cohort_metrics",
    "error_analysis",
    "estimate_batch_cost",
    "filesystem_for",
    "load_drift_data",
    "output_schema",
    "rai_report",
    "read_probabilities",
    "read_scored",
    "score_dataframe",
    "score_frame",
    "score_parts_on_ray",
    "score_texts",
    "with_output_columns",
    "with_outputs",
]
