"""The Responsible-AI report (``labelwise batch rai``) as one HTML page beside its JSON."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from ._html import figure_uri, html_table, pyplot, write_report

__all__ = ["write_rai_report"]


def _fmt(interval: dict[str, Any] | None) -> str:
    if interval is None:
        return "-"
    if interval["low"] is None:
        return f"{interval['value']:.3f} (too few items for an interval)"
    text = f"{interval['value']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"
    if "p_value" in interval:
        text += f" p={interval['p_value']:.3g}"
    return text


def _cohort_section(cohort: dict[str, Any], overall: float) -> str:
    plt = pyplot()
    groups = cohort["groups"]
    metrics = list(groups[0]["metrics"])
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(groups) + 1.2))
    names = [g["group"] for g in groups][::-1]
    values = [g["metrics"]["accuracy"]["value"] for g in groups][::-1]
    accuracy = [g["metrics"]["accuracy"] for g in groups][::-1]
    # A group too small for an interval gets no error bar.
    errors = [
        [0.0 if a["low"] is None else a["value"] - a["low"] for a in accuracy],
        [0.0 if a["high"] is None else a["high"] - a["value"] for a in accuracy],
    ]
    colours = ["#bbbbbb" if g["small"] else "#4c72b0" for g in groups][::-1]
    axis.barh(names, values, xerr=errors, color=colours, capsize=3)
    axis.axvline(overall, color="#c44e52", linestyle="--", label="overall")
    axis.set_xlim(0, 1)
    axis.set_xlabel("accuracy (95% bootstrap interval; grey: too few items)")
    axis.legend(loc="lower right")
    rows: list[list[Any]] = [
        [
            g["group"] + (" (small)" if g["small"] else ""),
            g["count"],
            *(_fmt(g["metrics"][k]) for k in metrics),
        ]
        for g in groups
    ]
    for kind in ("difference", "ratio"):
        if cohort[kind] is not None:
            name = "largest gap (max - min)" if kind == "difference" else "ratio (min / max)"
            rows.append([name, "", *(_fmt(cohort[kind].get(k)) for k in metrics)])
    inner = f"<img src='{figure_uri(figure)}' alt='accuracy by {html.escape(cohort['cohort'])}'>"
    inner += html_table(["group", "items", *metrics], rows)
    if "warning" in cohort:
        inner += f"<p class='note'>Warning: {html.escape(cohort['warning'])}.</p>"
    return inner


def _confusion_plot(matrix: list[list[int]], labels: list[str]) -> str:
    plt = pyplot()
    counts = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(0.7 * len(labels) + 2.5, 0.7 * len(labels) + 2))
    axis.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        axis.text(
            j, i, str(count), ha="center", va="center", color="white" if count > counts.max() / 2 else "black"
        )
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    return f"<img src='{figure_uri(figure)}' alt='confusion matrix'>"


def _errors_section(errors: dict[str, Any], labels: list[str]) -> str:
    worst = html_table(
        ["cohort", "group", "items", "accuracy", "gap to overall"],
        [
            [w["cohort"], w["group"], w["count"], _fmt(w), f"{w['gap_to_overall']:+.3f}"]
            for w in errors["worst_groups"]
        ],
    )
    pairs = "".join(
        f"<h3>true {html.escape(p['true'])} → predicted {html.escape(p['predicted'])}: {p['count']} items "
        f"({p['share_of_true']:.0%} of true {html.escape(p['true'])})</h3><ul>"
        + "".join(f"<li>{html.escape(e)}</li>" for e in p["examples"])
        + "</ul>"
        for p in errors["confused_pairs"]
    )
    abstained = errors["abstentions"]
    return (
        "<h3>Worst-served groups</h3>" + worst + _confusion_plot(errors["confusion_matrix"], labels)
        + "<h3>Most confused label pairs</h3>" + pairs
        + f"<p>{abstained['count']} items got no label.</p>"
    )  # fmt: skip


def _calibration_section(calibration: dict[str, Any]) -> str:
    plt = pyplot()
    bins = calibration["bins"]
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="#888888", label="perfectly calibrated")
    axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color="#4c72b0",
              label="classifier")  # fmt: skip
    axis.set_xlabel("confidence (top-label probability)")
    axis.set_ylabel("accuracy")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.legend(loc="upper left")
    table = html_table(
        ["bin", "items", "confidence", "accuracy"],
        [[f"{b['low']:.1f}-{b['high']:.1f}", b["count"], f"{b['confidence']:.3f}", f"{b['accuracy']:.3f}"]
         for b in bins],
    )  # fmt: skip
    return (
        f"<p>Expected calibration error {calibration['expected_calibration_error']:.3f}, "
        f"Brier score {calibration['brier_score']:.3f}, "
        f"on {calibration['rows']} items with probabilities.</p>"
        f"<img src='{figure_uri(figure)}' alt='reliability diagram'>" + table
    )


def _robustness_section(robustness: dict[str, Any]) -> str:
    probes = robustness["probes"]
    if not probes:
        return f"<p class='note'>{html.escape(robustness['note'] or 'No probes were run.')}</p>"
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(probes) + 1.2))
    rates = [p["flip_rate"] for p in probes][::-1]
    errors = [
        [p["flip_rate"] - p["low"] for p in probes][::-1],
        [p["high"] - p["flip_rate"] for p in probes][::-1],
    ]
    axis.barh([p["probe"] for p in probes][::-1], rates, xerr=errors, color="#dd8452", capsize=3)
    axis.set_xlim(0, 1)
    axis.set_xlabel("share of predictions that flipped (95% Wilson interval)")
    table = html_table(
        ["probe", "kind", "items", "flip rate", "accuracy before", "accuracy after"],
        [[p["probe"], p["kind"], p["items"], f"{p['flip_rate']:.3f} [{p['low']:.3f}, {p['high']:.3f}]",
          "-" if p["accuracy_before"] is None else f"{p['accuracy_before']:.3f}",
          "-" if p["accuracy_after"] is None else f"{p['accuracy_after']:.3f}"] for p in probes],
    )  # fmt: skip
    flips = "".join(
        f"<h3>{html.escape(p['probe'])}</h3><ul>"
        + "".join(
            f"<li>{html.escape(str(e['before']))} → {html.escape(str(e['after']))}: "
            f"{html.escape(e['changed'] or '')}</li>"
            for e in p["examples"]
        )
        + "</ul>"
        for p in probes
        if p["examples"]
    )
    return f"<img src='{figure_uri(figure)}' alt='robustness flip rates'>" + table + flips


def write_rai_report(report: dict[str, Any], out: Path) -> list[Path]:
    """``out`` (HTML, with plots) and the same name with ``.json``."""
    overall = report["overall"]
    metrics = overall["metrics"]
    left_out = ", ".join(f"{n} {reason}" for reason, n in report["left_out"].items())
    summary = (
        f"<p>{overall['rows']} scored items of <i>{html.escape(report['data'])}</i> "
        f"(classifier {html.escape(str(report['artifact_tag']))})"
        + (f"; left out: {html.escape(left_out)}" if left_out else "")
        + f". Cohorts from {html.escape(report['cohort_source'])}.</p>"
    )
    summary += html_table(
        ["metric", "value [95% interval]", "most frequent label"],
        [[name, _fmt(e), f"{overall['most_frequent_baseline'][name]:.3f}"
          if name in overall["most_frequent_baseline"] else "-"] for name, e in metrics.items()],
    )  # fmt: skip
    summary += "".join(f"<p class='note'>Warning: {html.escape(w)}.</p>" for w in report["warnings"])
    accuracy = metrics["accuracy"]["value"]
    sections = [("Summary", summary)]
    sections += [(f"By {c['cohort']}", _cohort_section(c, accuracy)) for c in report["cohorts"]]
    sections.append(("Error analysis", _errors_section(report["errors"], report["labels"])))
    if report["calibration"] is not None:
        sections.append(("Calibration", _calibration_section(report["calibration"])))
    sections.append(("Robustness", _robustness_section(report["robustness"])))
    return write_report(out, "Responsible-AI report", sections, report)
