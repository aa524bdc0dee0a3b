"""Batch: scoring whole datasets, Responsible-AI analysis and drift analysis."""

__all__: list[str] = []
