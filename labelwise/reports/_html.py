"""Self-contained HTML reports with matplotlib plots embedded as PNG data URIs."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import LabelwiseError

__all__ = ["figure_uri", "html_page", "html_table", "pyplot", "write_report"]

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


def img(uri: str, alt: str) -> str:
    return f"<img src='{uri}' alt='{html.escape(alt)}'>"
