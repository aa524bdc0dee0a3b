"""Self-contained HTML reports with matplotlib plots embedded as PNG data URIs."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..packaging import LabelwiseError

if TYPE_CHECKING:
    from ._experiment import Leaderboard

__all__ = ["figure_uri", "html_page", "html_table", "leaderboard_html", "pyplot", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } .note { color: #555; font-size: 0.9rem; }
"""


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LabelwiseError("HTML reports need matplotlib: pip install 'labelwise[reports]'") from None
    return plt


def figure_uri(figure: Any) -> str:
    """A matplotlib figure as an inline PNG, so the page needs no other file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A whole page: each section is (heading, inner HTML)."""
    parts = "".join(f"<section><h2>{html.escape(h)}</h2>{inner}</section>" for h, inner in sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{parts}</body></html>"
    )


def _json_safe(value: Any) -> Any:
    """NaN (a statistic or interval that could not be computed) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(
    out: Path, title: str, sections: Sequence[tuple[str, str]], report: dict[str, Any]
) -> list[Path]:
    """The page at ``out`` and the report as JSON beside it (same name, ``.json``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html_page(title, sections), encoding="utf-8")
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(_json_safe(report), indent=2))
    return [out, json_path]


def _img(uri: str, alt: str) -> str:
    return f"<img src='{uri}' alt='{html.escape(alt)}'>"


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
    sections = [("Weighted F1 by candidate", _img(figure_uri(figure), "weighted F1 by candidate"))]

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
        sections.append(("F1 by number of examples", _img(figure_uri(figure), "F1 by number of examples")))

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
