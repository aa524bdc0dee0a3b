from ._html import figure_uri, html_page, html_table, img, pyplot, write_report

__all__ = ["figure_uri", "html_page", "html_table", "img", "pyplot", "write_report"]
