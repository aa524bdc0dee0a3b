"""The prompt experiment's leaderboard as a self-contained HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import write_table
from ..evaluation import leaderboard_records
from ._html import figure_uri, html_page, html_table, img, pyplot

if TYPE_CHECKING:
    from ..evaluation import Leaderboard

__all__ = ["leaderboard_html", "write_leaderboard"]


def leaderboard_html(board: Leaderboard) -> str:
    plt = pyplot()
    rows = board.rows
    names = [row.candidate.name for row in rows]
    values = [row.card.metrics["weighted_f1"].value for row in rows]
    errors = [
        [v - row.card.metrics["weighted_f1"].low for v, row in zip(values, rows, strict=True)],
        [row.card.metrics["weighted_f1"].high - v for v, row in zip(values, rows, strict=True)],
    ]
    figure, axis = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.5))
    axis.barh(names[::-1], values[::-1], xerr=[errors[0][::-1], errors[1][::-1]], color="#4c72b0", capsize=3)
    axis.axvline(
        board.baseline.get("weighted_f1", 0.0), color="#c44e52", linestyle="--", label="most frequent label"
    )
    if board.production is not None:
        axis.axvline(board.production.card.metrics["weighted_f1"].value, color="#55a868", label="production")
    axis.set_xlabel("weighted F1 (95% bootstrap interval)")
    axis.legend(loc="lower right")
    sections = [("Weighted F1 by candidate", img(figure_uri(figure), "weighted F1 by candidate"))]

    few_shot = [row for row in rows if row.candidate.k > 0]
    if few_shot:
        figure, axis = plt.subplots(figsize=(7, 4))
        for template in sorted({row.candidate.template for row in few_shot}):
            ours = sorted(
                (r for r in few_shot if r.candidate.template == template), key=lambda r: r.candidate.k
            )
            seeds = sorted({r.candidate.example_seed or 0 for r in ours})
            # One point per example set with its bootstrap interval, nudged apart; a line through the means.
            for r in ours:
                f1 = r.card.metrics["weighted_f1"]
                x = r.candidate.k + 0.08 * (seeds.index(r.candidate.example_seed or 0) - (len(seeds) - 1) / 2)
                axis.errorbar(
                    [x],
                    [f1.value],
                    yerr=[[f1.value - f1.low], [f1.high - f1.value]],
                    fmt="o",
                    capsize=3,
                    color="#4c72b0",
                    alpha=0.7,
                )
            ks = sorted({r.candidate.k for r in ours})
            means = [
                sum(r.card.metrics["weighted_f1"].value for r in ours if r.candidate.k == k)
                / sum(1 for r in ours if r.candidate.k == k)
                for k in ks
            ]
            axis.plot(ks, means, marker="s", label=f"{template} (mean over example sets)")
        axis.set_xticks(sorted({r.candidate.k for r in few_shot}))
        axis.set_xlabel("number of examples (k)")
        axis.set_ylabel("weighted F1 (95% bootstrap interval)")
        axis.legend()
        sections.append(("F1 by number of examples", img(figure_uri(figure), "F1 by number of examples")))

    metrics = list(rows[0].card.metrics) if rows else []
    table_rows = []
    for row in rows + ([board.production] if board.production else []):
        cells = [row.candidate.name, row.candidate.tag]
        cells += [
            f"{row.card.metrics[m].value:.3f} [{row.card.metrics[m].low:.3f}, {row.card.metrics[m].high:.3f}]"
            for m in metrics
        ]
        table_rows.append(cells)
    table_rows.append(
        ["most frequent label", "-"]
        + [f"{board.baseline[m]:.3f}" if m in board.baseline else "-" for m in metrics]
    )
    sections.append(("Leaderboard", html_table(["candidate", "tag", *metrics], table_rows)))
    experiment = board.experiment
    sections.append(
        (
            "Experiment",
            f"<pre>{html.escape(experiment.model_dump_json(indent=2))}</pre>"
            "<p class='note'>Every candidate was scored on the same seeded sample; intervals are "
            "percentile bootstrap intervals.</p>",
        )
    )
    return html_page(f"Prompt experiment {experiment.name}", sections)


def write_leaderboard(board: Leaderboard, out_dir: Path) -> list[Path]:
    """leaderboard.csv, leaderboard.json and report.html (with plots) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = leaderboard_records(board)
    columns = list(dict.fromkeys(key for record in records for key in record))
    write_table(records, out_dir / "leaderboard.csv", columns=columns)
    (out_dir / "leaderboard.json").write_text(json.dumps(board.model_dump(mode="json"), indent=2))
    (out_dir / "report.html").write_text(leaderboard_html(board), encoding="utf-8")
    return [out_dir / "leaderboard.csv", out_dir / "leaderboard.json", out_dir / "report.html"]
