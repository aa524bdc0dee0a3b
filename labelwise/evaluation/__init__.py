"""Evaluation: metrics, statistical comparison, prompt experiments and fine-tuning gaps."""

__all__: list[str] = []
