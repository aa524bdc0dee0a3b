"""An optimisation as files: the leaderboard, a self-contained page of its rounds, MLflow runs."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import write_table
from ..evaluation import mlflow_experiment
from ._html import figure_uri, html_table, img, pyplot, write_report

if TYPE_CHECKING:
    from ..evaluation import OptimizeResult

__all__ = ["log_optimize_to_mlflow", "optimize_leaderboard", "write_optimize_report"]


def optimize_leaderboard(result: OptimizeResult) -> list[dict[str, Any]]:
    """One record per candidate: the winner first, then by how far each got and its score there."""
    records = []
    for rank, c in enumerate(result.candidates, start=1):
        record = {
            "rank": rank,
            **c.model_dump(),
            "winner": c.key == result.winner,
            "base": c.key == result.base,
        }
        record[f"selection_{result.metric}"] = record.pop("score")
        record["selection_rows"] = record.pop("rows")
        records.append(record)
    return records


def _rounds_plot(result: OptimizeResult) -> str:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.5))
    names = {c.key: c.name for c in result.candidates}
    for key in names:
        points = [(r.rows, r.scores[key]) for r in result.rounds if key in r.scores]
        won = key == result.winner
        axis.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="o",
            color="#c44e52" if won else "#999999",
            alpha=1.0 if won else 0.4,
            linewidth=2 if won else 1,
            label=f"winner: {names[key]}" if won else None,
        )
    test = result.optimism.test
    axis.axhspan(test.low, test.high, color="#4c72b0", alpha=0.15)
    axis.axhline(
        test.value, color="#4c72b0", linestyle="--",
        label=f"winner on the {result.test_rows} locked test rows (95% interval)",
    )  # fmt: skip
    axis.set_xticks(sorted({r.rows for r in result.rounds}))
    axis.set_xlabel("selection rows each candidate was scored on (one point per round)")
    axis.set_ylabel(result.metric)
    axis.legend(fontsize=8, loc="lower right")
    return img(figure_uri(figure), "scores by round")


def _summary(result: OptimizeResult) -> str:
    o, spend, estimate = result.optimism, result.spend, result.estimate
    winner, base = result.candidate(result.winner), result.candidate(result.base)
    rows = [
        ["winner", f"{winner.name} ({result.winner})"],
        [f"selection {o.metric}", f"{o.selection:.3f} on {o.selection_rows} rows"],
        [
            f"test {o.metric}",
            f"{o.test.value:.3f} [{o.test.low:.3f}, {o.test.high:.3f}] on {result.test_rows} rows",
        ],
        [f"base on test ({base.name})", f"{result.base_card.metrics[o.metric].value:.3f}"],
        ["optimism (selection - test)", f"{o.value:+.3f} [{o.low:+.3f}, {o.high:+.3f}]"],
        ["calls", f"{spend['calls']} ({spend['calls_this_run']} this run); estimated {estimate.calls}"],
        ["cost", f"${spend['cost_usd']:.4f}; estimated ${estimate.cost_usd:.4f}"],
        ["budget", "none" if spend["limit"] is None else f"{spend['limit']} {spend['unit']}"],
        ["stopped by the budget", "yes" if result.stopped_by_budget else "no"],
    ]
    return html_table(["", ""], rows)


def _rounds_table(result: OptimizeResult) -> str:
    names = {c.key: c.name for c in result.candidates}
    rows = []
    for r in result.rounds:
        best = r.scores[r.kept[0]]  # the kept come best first
        dropped = ", ".join(html.escape(names[k]) for k in r.dropped) or "-"
        kept = ", ".join(html.escape(names[k]) for k in r.kept)
        rows.append([r.index, r.rows, len(r.scores), f"{best:.3f}", kept, dropped])
    return html_table(["round", "rows each", "candidates", "best", "kept", "dropped"], rows)


def write_optimize_report(result: OptimizeResult, out_dir: Path) -> list[Path]:
    """leaderboard.csv, report.html and report.json (the whole result) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = optimize_leaderboard(result)
    write_table(records, out_dir / "leaderboard.csv", columns=list(records[0]))
    comparison = html_table(
        ["metric", "base", "winner", "winner - base [95%]", "test", "p-value", "better"],
        [
            [t["metric"], f"{t['base']:.3f}", f"{t['winner']:.3f}",
             f"{t['difference']:+.3f} [{t['low']:+.3f}, {t['high']:+.3f}]", t["test"], f"{t['p_value']:.3g}",
             {"A": "base", "B": "winner", "tie": "no significant difference"}[t["better"]]]
            for t in result.comparison
        ],
    )  # fmt: skip
    board = html_table(
        ["rank", "candidate", "rounds", "rows", result.metric, "dropped in round"],
        [[r["rank"], html.escape(r["name"]), r["rounds"], r["selection_rows"],
          f"{r[f'selection_{result.metric}']:.3f}", r["dropped_in_round"] or "-"] for r in records],
    )  # fmt: skip
    sections = [
        ("The winner, measured honestly", _summary(result)),
        ("Scores by round", _rounds_plot(result)),
        ("Rounds", _rounds_table(result)),
        ("Winner against the base spec on the test rows", comparison),
        ("Candidates", board),
        (
            "How to read this",
            "<p class='note'>Candidates were chosen on the selection rows only. The winner and the base "
            "spec were then scored once on test rows that no candidate saw; the optimism is how much "
            "the selection score flattered the winner, with the test score's bootstrap interval.</p>",
        ),
    ]
    report = result.model_dump(mode="json")
    files = write_report(
        out_dir / "report.html", f"Optimisation of {result.winner_spec.name}", sections, report
    )
    return [out_dir / "leaderboard.csv", *files]


def log_optimize_to_mlflow(result: OptimizeResult, tracking_uri: str, *, artifact_dir: Path) -> str:
    """One MLflow run per candidate (its rounds and score), and one for the winner's test figures."""
    name = f"labelwise-optimize-{result.winner_spec.name}"
    mlflow, experiment_id = mlflow_experiment(tracking_uri, name, artifact_dir=artifact_dir)
    for c in result.candidates:
        with mlflow.start_run(experiment_id=experiment_id, run_name=c.name):
            mlflow.set_tags({"candidate": c.key, "winner": str(c.key == result.winner)})
            mlflow.log_params(
                {k: v for k, v in c.model_dump().items() if k not in ("score", "rows") and v is not None}
            )
            for r in result.rounds:
                if c.key in r.scores:
                    mlflow.log_metric(f"selection_{result.metric}", r.scores[c.key], step=r.rows)
    with mlflow.start_run(experiment_id=experiment_id, run_name="winner on the test rows"):
        o = result.optimism
        mlflow.log_metrics(
            {f"test_{o.metric}": o.test.value, f"test_{o.metric}_low": o.test.low,
             f"test_{o.metric}_high": o.test.high, "optimism": o.value, "optimism_low": o.low,
             "optimism_high": o.high, "calls": result.spend["calls"], "cost_usd": result.spend["cost_usd"]}
        )  # fmt: skip
        mlflow.log_dict(result.model_dump(mode="json"), "optimize.json")
    return experiment_id
