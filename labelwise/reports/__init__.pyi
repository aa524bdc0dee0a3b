from ._drift import ACCURACY_COLUMNS, CHECK_COLUMNS, accuracy_rows, check_cells, write_drift_report
from ._feedback import write_feedback_report
from ._html import figure_uri, html_page, html_table, img, pyplot, write_report
from ._leaderboard import leaderboard_html, write_leaderboard
from ._optimize import log_optimize_to_mlflow, optimize_leaderboard, write_optimize_report
from ._rai import write_rai_report
from ._sweep import leaderboard_rows, log_sweep_to_mlflow, write_sweep

__all__ = [
    "ACCURACY_COLUMNS",
    "CHECK_COLUMNS",
    "accuracy_rows",
    "check_cells",
    "figure_uri",
    "html_page",
    "html_table",
    "img",
    "leaderboard_html",
    "leaderboard_rows",
    "log_optimize_to_mlflow",
    "log_sweep_to_mlflow",
    "optimize_leaderboard",
    "pyplot",
    "write_drift_report",
    "write_feedback_report",
    "write_leaderboard",
    "write_optimize_report",
    "write_rai_report",
    "write_report",
    "write_sweep",
]
