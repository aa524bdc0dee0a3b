"""``labelwise feedback report``: feedback over time, per artifact version, as one HTML page."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core import LabelwiseError
from ..monitoring import ArtifactSummary, FeedbackSummary, Interval
from ._html import figure_uri, html_table, img, pyplot, write_report

__all__ = ["write_feedback_report"]


def _band(axis: Any, starts: list[datetime], values: list[float | None], intervals: list[Interval | None],
          label: str) -> None:  # fmt: skip
    points = [(s, v, i) for s, v, i in zip(starts, values, intervals, strict=True) if v is not None and i]
    if not points:
        return
    xs = [p[0] for p in points]
    line = axis.plot(xs, [p[1] for p in points], marker="o", label=label)[0]
    axis.fill_between(xs, [p[2].low for p in points], [p[2].high for p in points],
                      color=line.get_color(), alpha=0.2)  # fmt: skip


def _plot(summary: ArtifactSummary) -> str:
    plt = pyplot()
    figure, (rates, shares) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    starts = [point.start for point in summary.series]
    series = summary.series
    _band(rates, starts, [p.thumbs_up_rate for p in series], [p.thumbs_up_interval for p in series],
          "thumbs-up rate")  # fmt: skip
    _band(rates, starts, [p.accuracy for p in series], [p.accuracy_interval for p in series],
          "accuracy (labelled feedback)")  # fmt: skip
    rates.set_ylim(0, 1.02)
    rates.set_ylabel("rate (95% Wilson band)")
    rates.legend(loc="lower left")
    shares.plot(starts, [p.feedback_share or 0.0 for p in series], marker="o", label="thumbs feedback share")
    for name in sorted({name for point in series for name in point.signals}):
        shares.plot(starts, [p.signals[name].share or 0.0 if name in p.signals else 0.0 for p in series],
                    marker=".", linestyle="--", label=f"{name} share")  # fmt: skip
    shares.set_ylabel("share of predictions")
    shares.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    return figure_uri(figure)


def _percent(value: float | None, interval: Interval | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" + (f" [{interval.low:.1%}, {interval.high:.1%}]" if interval else "")


def _table(summary: ArtifactSummary) -> str:
    header = ["bucket start (UTC)", "predictions", "feedback share", "thumbs up", "thumbs-up rate [95%]",
              "labelled", "accuracy [95%]", "signals"]  # fmt: skip
    rows = [
        [
            point.start.strftime("%Y-%m-%d %H:%M"),
            point.predictions,
            _percent(point.feedback_share),
            f"{point.thumbs_up}/{point.feedback}",
            _percent(point.thumbs_up_rate, point.thumbs_up_interval),
            point.labelled,
            _percent(point.accuracy, point.accuracy_interval),
            ", ".join(f"{name} {s.events}" for name, s in point.signals.items()) or "-",
        ]
        for point in summary.series
    ]
    return html_table(header, rows)


def write_feedback_report(summary: FeedbackSummary, out: Path) -> list[Path]:
    """The HTML page (one plot and one table per artifact version) and the summary as JSON beside it."""
    if out.suffix.lower() not in {".html", ".htm"}:
        raise LabelwiseError(f"--out {out}: the report is an HTML page; name it report.html")
    sections = [("About these figures", f"<p class='note'>{html.escape(summary.warning)}</p>")]
    for artifact in summary.by_artifact:
        overall = (
            f"<p>{artifact.predictions} predictions, {artifact.feedback} with thumbs "
            f"({_percent(artifact.feedback_share)}); thumbs-up rate "
            f"{_percent(artifact.thumbs_up_rate, artifact.thumbs_up_interval)}; accuracy on "
            f"{artifact.labelled} labelled {_percent(artifact.accuracy, artifact.accuracy_interval)}.</p>"
        )
        body = (
            overall
            + img(_plot(artifact), f"feedback over time for {artifact.artifact_tag}")
            + _table(artifact)
        )
        sections.append((f"{artifact.artifact_tag}, by {summary.bucket}", body))
    return write_report(out, "Feedback over time", sections, summary.model_dump(mode="json"))
