"""A sweep's leaderboard as files, a self-contained HTML page, and MLflow runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core import write_table
from ..evaluation import mlflow_experiment
from ..training import SweepBoard, TrialRow
from ._html import figure_uri, html_table, img, pyplot, write_report

__all__ = ["leaderboard_rows", "log_sweep_to_mlflow", "write_sweep"]


def _interval(row: TrialRow, metric: str) -> str:
    if row.card is None or metric not in row.card.metrics:
        return "-"
    m = row.card.metrics[metric]
    return f"{m.value:.3f} [{m.low:.3f}, {m.high:.3f}]"


def leaderboard_rows(board: SweepBoard) -> list[dict[str, Any]]:
    """One record per trial, best first: its settings, how it ended, reported and measured figures."""
    ordinal = any(r.card is not None and "mae" in r.card.metrics for r in board.rows)
    metrics = list(dict.fromkeys([board.metric, "accuracy", *(["mae", "rmse"] if ordinal else [])]))
    records = []
    for rank, row in enumerate(board.ranked(), start=1):
        record: dict[str, Any] = {"rank": rank if row.card else None, "trial": row.trial_id, **row.config}
        record |= {"status": row.status, "job_id": row.job_id, "steps": row.steps}
        record |= {"reported_valid_loss": row.valid_loss, "reported_accuracy": row.reported_accuracy}
        record |= {f"measured_{m}": _interval(row, m) for m in metrics}
        record |= {"cost_usd": row.estimated_cost_usd, "model_id": row.model_id}
        records.append(record)
    return records


def _loss_curves(board: SweepBoard) -> str:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for row in board.rows:
        if not row.curve:
            continue
        label = ", ".join(f"{k}={v}" for k, v in row.config.items())
        style = "--" if row.status != "succeeded" else "-"
        axis.plot([p["examples_seen"] for p in row.curve], [p["valid_loss"] for p in row.curve],
                  linestyle=style, label=f"{label} ({row.status})")  # fmt: skip
    axis.set_xlabel("training examples seen")
    axis.set_ylabel("validation loss (reported)")
    axis.legend(fontsize=7, loc="upper right")
    return img(figure_uri(figure), "validation loss curves")


def _metric_by_hyperparameter(board: SweepBoard) -> str:
    plt = pyplot()
    measured = [
        (r, r.card.metrics[board.metric]) for r in board.rows if r.card and board.metric in r.card.metrics
    ]
    swept = list(board.sweep.space)
    if not measured or not swept:
        return "<p class='note'>no trial finished, so nothing was measured</p>"
    figure, axes = plt.subplots(1, len(swept), figsize=(4 * len(swept), 3.5), squeeze=False)
    for axis, name in zip(axes[0], swept, strict=True):
        for row, m in measured:
            value = row.config.get(name)
            x = value if isinstance(value, int | float) else str(value)
            axis.errorbar([x], [m.value], yerr=[[m.value - m.low], [m.high - m.value]], fmt="o",
                          capsize=3, color="#4c72b0")  # fmt: skip
        numbers = sorted({v for r, _ in measured if isinstance(v := r.config.get(name), int | float)})
        if name in ("learning_rate_multiplier", "batch_size"):
            axis.set_xscale("log")
            axis.minorticks_off()
        if numbers and len(numbers) <= 8:  # the values tried, as written in the sweep
            axis.set_xticks(numbers, [f"{v:g}" for v in numbers])
        axis.set_xlabel(name)
    axes[0][0].set_ylabel(f"measured {board.metric}")
    figure.tight_layout()
    return img(figure_uri(figure), f"measured {board.metric} against each hyperparameter")


def write_sweep(board: SweepBoard, out_dir: Path) -> list[Path]:
    """leaderboard.csv, report.html and report.json (the whole board) in ``out_dir``."""
    records = leaderboard_rows(board)
    columns = list(dict.fromkeys(key for record in records for key in record))
    write_table(records, out_dir / "leaderboard.csv", columns=columns)
    stopped = sum(r.status == "stopped early" for r in board.rows)
    summary = (
        f"<p>{len(board.rows)} trials, {stopped} stopped early (their jobs cancelled); finished trials "
        f"measured on the same {board.test_rows} held-out rows, ranked by measured {board.metric}, "
        "not by the loss the provider reports.</p>"
    )
    table = html_table(columns, [[("" if r.get(c) is None else r.get(c)) for c in columns] for r in records])
    sections = [
        ("Leaderboard", summary + table),
        ("Validation loss as each job trained", _loss_curves(board)),
        (f"Measured {board.metric} against each hyperparameter", _metric_by_hyperparameter(board)),
    ]
    title = f"Fine-tuning sweep {board.sweep.name}"
    report = write_report(out_dir / "report.html", title, sections, board.model_dump(mode="json"))
    return [out_dir / "leaderboard.csv", *report]


def log_sweep_to_mlflow(board: SweepBoard, tracking_uri: str, *, artifact_dir: Path) -> str:
    """One MLflow run per trial: its settings, loss curve by step, and measured metrics."""
    name = f"labelwise-sweep-{board.sweep.name}"
    mlflow, experiment_id = mlflow_experiment(tracking_uri, name, artifact_dir=artifact_dir)
    for row in board.rows:
        with mlflow.start_run(experiment_id=experiment_id, run_name=row.trial_id):
            mlflow.set_tags(
                {"job_id": row.job_id or "", "status": row.status, "model_id": row.model_id or ""}
            )
            mlflow.log_params(row.config)
            for point in row.curve:
                mlflow.log_metrics(
                    {"valid_loss": point["valid_loss"], "train_loss": point["train_loss"]},
                    step=int(point["step"]),
                )
            if row.card is not None:
                for metric, estimate in row.card.metrics.items():
                    mlflow.log_metrics(
                        {
                            metric: estimate.value,
                            f"{metric}_low": estimate.low,
                            f"{metric}_high": estimate.high,
                        }
                    )
    return experiment_id
