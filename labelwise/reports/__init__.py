"""Reports: self-contained HTML pages with plots, and their JSON twins, written atomically.

Batch (RAI, drift) and evaluation (experiments) render their reports through these helpers.
"""

from ._html import figure_uri, html_page, html_table, img, pyplot, write_report

__all__ = ["figure_uri", "html_page", "html_table", "img", "pyplot", "write_report"]
