"""The drift report: its checks and accuracy as table rows, plots, and the HTML page beside its JSON."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..monitoring import DriftData
from ._html import figure_uri, html_table, pyplot, write_report

__all__ = ["ACCURACY_COLUMNS", "CHECK_COLUMNS", "accuracy_rows", "check_cells", "write_drift_report"]


def _plots(reference: DriftData, current: DriftData) -> list[tuple[str, str]]:
    plt = pyplot()
    sections = []
    categories = sorted({str(v) for v in reference.labels + current.labels})
    figure, axis = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(categories))
    for offset, (data, name) in enumerate(((reference, "reference"), (current, "current"))):
        values = [str(v) for v in data.labels]
        shares = [values.count(c) / max(len(values), 1) for c in categories]
        axis.bar(x + (offset - 0.5) * 0.4, shares, width=0.4, label=name)
    axis.set_xticks(x, categories)
    axis.set_ylabel("share of predictions")
    axis.legend()
    sections.append(("Predicted labels", f"<img src='{figure_uri(figure)}' alt='predicted label shares'>"))
    for feature, attribute in (("Confidence", "confidence"), ("Text length", "lengths")):
        ref = np.asarray(getattr(reference, attribute), dtype=float)
        cur = np.asarray(getattr(current, attribute), dtype=float)
        ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
        if not len(ref) or not len(cur):
            continue
        figure, axis = plt.subplots(figsize=(7, 3.5))
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        axis.hist(ref, bins=bins, alpha=0.6, density=True, label="reference")
        axis.hist(cur, bins=bins, alpha=0.6, density=True, label="current")
        axis.set_xlabel(feature.lower())
        axis.legend()
        sections.append((feature, f"<img src='{figure_uri(figure)}' alt='{feature.lower()} distributions'>"))
    return sections


CHECK_COLUMNS = ("feature", "test", "statistic", "p-value", "drift when")


def check_cells(check: dict[str, Any]) -> list[str]:
    """A drift check as table cells, in ``CHECK_COLUMNS`` order; a check that did not run shows n/a."""
    statistic, p_value = check["statistic"], check["p_value"]
    return [
        check["feature"],
        check["test"],
        "n/a" if math.isnan(statistic) else f"{statistic:.4g}",
        "" if p_value is None else f"{p_value:.3g}",
        check["rule"],
    ]


def write_drift_report(
    report: dict[str, Any], reference: DriftData, current: DriftData, out: Path
) -> list[Path]:
    """``out`` (HTML, with plots) and the same name with ``.json``."""
    rows = [[*check_cells(c), "DRIFT" if c["drifted"] else "ok"] for c in report["checks"]]
    verdict = "Drift detected" if report["drifted"] else "No drift detected"
    summary = (
        f"<p><b>{verdict}</b>: current <i>{html.escape(report['current'])}</i> against reference "
        f"<i>{html.escape(report['reference'])}</i> (model {html.escape(str(report['model']))}).</p>"
    )
    sections = [
        (
            "Summary",
            summary + html_table([*CHECK_COLUMNS, "verdict"], rows),
        )
    ]
    sections.append(("Accuracy: estimated without labels, measured where labelled", _accuracy_table(report)))
    sections += _plots(reference, current)
    return write_report(out, "Drift report", sections, report)


def _span(value: float | None, low: float | None, high: float | None) -> str:
    return "-" if value is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def accuracy_rows(report: dict[str, Any]) -> list[list[str]]:
    """The accuracy section as rows: side, estimated [95%], measured [95%], predictions, method."""
    rows = []
    for row in report["accuracy"]:
        estimated, measured = row["estimated"], row["measured"]
        rows.append([
            row["side"],
            _span(estimated["value"], estimated["low"], estimated["high"]),
            "no labels" if measured is None else _span(measured["value"], measured["low"], measured["high"]),
            str(estimated["predictions"]),
            estimated["method"],
        ])  # fmt: skip
    return rows


ACCURACY_COLUMNS = (
    "data",
    "estimated accuracy [95%]",
    "measured accuracy [95%]",
    "predictions",
    "estimated by",
)


def _accuracy_table(report: dict[str, Any]) -> str:
    warnings = {row["estimated"]["warning"] for row in report["accuracy"]} - {None}
    notes = "".join(f"<p class='note'><b>Warning:</b> {html.escape(w)}</p>" for w in sorted(warnings))
    current = report["accuracy"][-1]["estimated"]["per_label"]
    precision = [
        [label, str(row["predictions"]), _span(row["precision"], row["low"], row["high"])]
        for label, row in current.items()
    ]
    per_label = "<p>Estimated precision of each predicted label, current data:</p>" + html_table(
        ("predicted label", "predictions", "estimated precision [95%]"), precision
    )
    return html_table(ACCURACY_COLUMNS, accuracy_rows(report)) + notes + (per_label if precision else "")
