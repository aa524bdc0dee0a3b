"""Candidate prompts derived from a base spec: a template, examples drawn from a pool, decoding.

``experiment`` (a fixed grid) and ``optimize`` (a search within a budget) make their candidates
here, so a candidate is the same spec whichever of them made it, and its would-be artifact tag
names it in both.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Literal

from ..backends import BackendSpec
from ..core import LabelwiseError
from ..packaging import ClassifierSpec
from ._evaluate import LabelledData

__all__ = ["Draw", "derive_spec", "draw_examples"]

Draw = Literal["random", "stratified"]


def derive_spec(
    base: ClassifierSpec,
    *,
    name: str,
    template: str,
    examples: list[dict[str, str]],
    temperature: float,
    backend: dict[str, Any] | None = None,
    nearest: tuple[int, BackendSpec] | None = None,
    example_template: str | None = None,
) -> ClassifierSpec:
    """``base`` with another template, examples and temperature (and backend fields, if given).

    No examples makes it zero-shot; ``example_template`` (default: the base's) writes each
    example. ``nearest=(k, embedder)`` shows each input the k examples most similar to it
    instead of every example.
    """
    data = base.model_dump(mode="json", exclude_none=True)
    data["name"] = name
    technique = {
        key: value
        for key, value in data["technique"].items()
        if key not in ("examples", "examples_file", "selection", "k", "embedder")
    }
    technique["template"] = template
    if examples:
        technique.update(kind="few_shot", examples=examples)
        technique["example_template"] = (
            example_template or technique.get("example_template") or "Text: {text}\nLabel: {label}"
        )
        if nearest is not None:
            k, embedder = nearest
            embedding = embedder.model_dump(mode="json", exclude_none=True)
            technique.update(selection="nearest", k=k, embedder=embedding)
    else:
        technique["kind"] = "zero_shot"
        for key in ("example_template", "example_separator"):
            technique.pop(key, None)
    data["technique"] = technique
    data["decoding"] = {**data.get("decoding", {}), "temperature": temperature}
    if backend:
        data["backend"] = {**data["backend"], **backend}
    return ClassifierSpec.from_dict(data, source=f"candidate {name}")


def draw_examples(pool: LabelledData, k: int, seed: int, how: Draw = "random") -> list[dict[str, str]]:
    """``k`` examples from ``pool``, seeded.

    random: any k rows. stratified: the labels take turns (in the pool's order of first
    appearance, shuffled by the seed), so k >= the number of labels shows every label.
    """
    if k > len(pool.texts):
        raise LabelwiseError(f"cannot draw {k} examples from a pool of {len(pool.texts)} rows")
    rng = random.Random(seed)
    if how == "random":
        chosen = rng.sample(range(len(pool.texts)), k)
    else:
        by_label: dict[str, list[int]] = defaultdict(list)
        for i, label in enumerate(pool.labels):
            by_label[label].append(i)
        for rows in by_label.values():
            rng.shuffle(rows)
        order = list(by_label)
        rng.shuffle(order)
        chosen = []
        while len(chosen) < k:
            for label in order:
                if by_label[label] and len(chosen) < k:
                    chosen.append(by_label[label].pop())
        rng.shuffle(chosen)  # not grouped by label in the prompt
    return [{"text": pool.texts[i], "label": pool.labels[i]} for i in chosen]
