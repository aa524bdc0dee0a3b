from ._batch_api import BatchAPIRunner
from ._cache import ResultCache
from ._canary import canary_verdict
from ._drift import DriftCheck, categorical_drift, numeric_drift, text_domain_drift
from ._drift_report import (
    ACCURACY_COLUMNS,
    CHECK_COLUMNS,
    REFERENCE_PROFILE,
    DriftData,
    accuracy_beside_estimate,
    accuracy_rows,
    check_cells,
    drift_report,
    load_drift_data,
    write_drift_report,
)
from ._rai import RaiData, SmallGroupWarning
from ._rai_report import rai_report, write_rai_report
from ._ray import score_with_ray
from ._score import (
    OUTPUT_COLUMNS,
    ScoredTable,
    ScoreSummary,
    check_output_names,
    read_scored,
    score_dataframe,
    score_frame,
    with_outputs,
)

__all__ = [
    "canary_verdict",
    "ACCURACY_COLUMNS",
    "accuracy_beside_estimate",
    "accuracy_rows",
    "BatchAPIRunner",
    "RaiData",
    "SmallGroupWarning",
    "CHECK_COLUMNS",
    "OUTPUT_COLUMNS",
    "REFERENCE_PROFILE",
    "DriftCheck",
    "DriftData",
    "ResultCache",
    "ScoreSummary",
    "ScoredTable",
    "categorical_drift",
    "check_cells",
    "check_output_names",
    "drift_report",
    "load_drift_data",
    "numeric_drift",
    "rai_report",
    "read_scored",
    "score_dataframe",
    "score_frame",
    "score_with_ray",
    "text_domain_drift",
    "with_outputs",
    "write_drift_report",
    "write_rai_report",
]
