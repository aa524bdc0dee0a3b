"""What ``labelwise optimize`` may vary, written as a small YAML beside the spec, and its candidates.

A candidate is the base spec with one template, one example set (k rows drawn from the pool one
way or another, or the k nearest to each input), one temperature and one model. Each is named
by its would-be artifact tag, so a scored candidate is known again after a restart.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..backends import BackendSpec, LabelToken
from ..core import LabelwiseError, StrictModel
from ..packaging import (
    ClassifierArtifact,
    ClassifierSpec,
    Template,
    measure_label_tokens,
    read_yaml_model,
    technique_for,
)
from ._candidates import derive_spec, draw_examples
from ._evaluate import LabelledData

__all__ = ["Candidate", "SearchSpace", "make_candidates"]

DrawKind = Literal["random", "stratified", "nearest"]


class SearchSpace(StrictModel):
    """What varies between candidates; every field is optional (the base spec's value)."""

    templates: dict[str, str] = Field(
        default_factory=dict,
        description="Name -> prompt template; {examples} makes it few-shot. Empty: the base spec's template.",
    )
    example_template: str | None = Field(
        default=None,
        description="How one example is written (default: the base spec's, or 'Text: ...\\nLabel: ...').",
    )
    k: list[int] = Field(default_factory=lambda: [1, 3, 5], min_length=1, description="Examples per prompt.")
    draws: int = Field(default=4, gt=0, description="Example sets drawn for each k and way of drawing.")
    draw: list[DrawKind] = Field(
        default_factory=lambda: list[DrawKind](["random", "stratified"]),
        min_length=1,
        description="random: any k pool rows; stratified: the labels take turns; nearest: the k pool "
        "rows most similar to each input (needs an embedder).",
    )
    max_example_chars: int | None = Field(
        default=None, gt=0, description="Pool rows longer than this are never drawn as examples (cost)."
    )
    embedder: BackendSpec | None = Field(
        default=None, description="nearest: where embeddings come from (default: the base spec's)."
    )
    temperatures: list[float] | None = Field(default=None, min_length=1)
    models: list[str | dict[str, Any]] | None = Field(
        default=None,
        min_length=1,
        description="A model name, or backend fields (model, prices, ...) that replace the base spec's.",
    )

    @model_validator(mode="after")
    def _sane(self) -> SearchSpace:
        if any(k <= 0 for k in self.k):
            raise ValueError("k must hold counts above 0 (a template without {examples} is zero-shot)")
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> SearchSpace:
        return read_yaml_model(cls, path, what="search space")

    @classmethod
    def for_spec(cls, spec_path: Path, path: Path | None = None) -> SearchSpace:
        """The space in ``path``; without one, the file beside the spec (``beside``), else the defaults."""
        if path is not None:
            return cls.from_yaml(path)
        beside = cls.beside(spec_path)
        return cls.from_yaml(beside) if beside.is_file() else cls()

    @staticmethod
    def beside(spec_path: Path) -> Path:
        """Where a spec's own search space is: ``NAME.space.yaml`` for ``NAME.yaml``."""
        return spec_path.with_suffix(".space.yaml")


class Candidate(StrictModel):
    """One point of the search space, and the spec it makes."""

    key: str = Field(description="The would-be artifact tag's version: the same spec, the same key.")
    name: str
    template: str
    k: int
    draw: DrawKind | None
    draw_seed: int | None
    temperature: float
    model: str
    spec: ClassifierSpec
    label_tokens: dict[str, LabelToken] | None = None
    model_files: dict[str, bytes] = Field(default_factory=dict)
    """What packaging would store with it (the pool's embeddings, for nearest examples)."""

    @classmethod
    def of(cls, spec: ClassifierSpec, label_tokens: dict[str, LabelToken] | None, **point: Any) -> Candidate:
        """The candidate for ``spec``, keyed by its would-be artifact's version."""
        files = technique_for(spec).model_files_for(spec, {})
        artifact = ClassifierArtifact(spec=spec, label_tokens=label_tokens, model_files=files)
        return cls(
            key=str(artifact.tag.version), spec=spec, label_tokens=label_tokens, model_files=files, **point
        )

    def artifact(self) -> ClassifierArtifact:
        return ClassifierArtifact(
            spec=self.spec, label_tokens=self.label_tokens, model_files=self.model_files
        )


def _templates(base: ClassifierSpec, space: SearchSpace) -> dict[str, str]:
    if space.templates:
        return space.templates
    return {"base": base.technique.prompt_template or ""}


def make_candidates(
    base: ClassifierSpec,
    space: SearchSpace,
    pool: LabelledData,
    *,
    seed: int,
    label_tokens: dict[str, dict[str, LabelToken] | None] | None = None,
) -> list[Candidate]:
    """Every candidate of ``space`` around ``base``, examples drawn from ``pool`` (seeded).

    ``label_tokens``: those already measured, by model (they depend only on the model).
    """
    if space.max_example_chars is not None:
        keep = [i for i, text in enumerate(pool.texts) if len(text) <= space.max_example_chars]
        if not keep:
            raise LabelwiseError(f"no pool row is as short as max_example_chars={space.max_example_chars}")
        pool = pool.subset(keep)
    embedder = space.embedder or getattr(base.technique, "embedder", None)
    if "nearest" in space.draw and embedder is None:
        raise LabelwiseError(
            "draw: nearest needs an embedder: give one in the search space (embedder: {provider: "
            "sentence_transformers, model: all-MiniLM-L6-v2}) or in the spec's technique"
        )
    temperatures = space.temperatures or [base.decoding.temperature]
    models: list[dict[str, Any] | None] = (
        [None] if space.models is None else [m if isinstance(m, dict) else {"model": m} for m in space.models]
    )
    points: list[tuple[str, str, int, DrawKind | None, int | None]] = []
    for name, template in _templates(base, space).items():
        if "examples" not in Template(template).vars():
            points.append((name, template, 0, None, None))
            continue
        for k, how in itertools.product(space.k, space.draw):
            if k > len(pool.texts):
                raise LabelwiseError(f"k={k} is more than the {len(pool.texts)} rows of the example pool")
            seeds: list[int | None] = [None] if how == "nearest" else list(range(space.draws))
            points += [(name, template, k, how, s) for s in seeds]
    candidates: list[Candidate] = []
    tokens = dict(label_tokens or {})
    for (name, template, k, how, draw_seed), temperature, backend in itertools.product(
        points, temperatures, models
    ):
        if how == "nearest":
            examples = [{"text": t, "label": label} for t, label in zip(pool.texts, pool.labels, strict=True)]
        elif k:
            examples = draw_examples(pool, k, seed * 1_000_003 + (draw_seed or 0) * 7919 + k, how or "random")
        else:
            examples = []
        spec = derive_spec(
            base,
            name=base.name,
            template=template,
            examples=examples,
            temperature=temperature,
            backend=backend,
            nearest=(k, embedder) if how == "nearest" and embedder is not None else None,
            example_template=space.example_template,
        )
        if spec.model_name not in tokens:
            tokens[spec.model_name] = measure_label_tokens(spec)
        label = name + (f" k={k} {how}" if k else "") + ("" if draw_seed is None else f" #{draw_seed}")
        if len(temperatures) > 1:
            label += f" t={temperature}"
        if len(models) > 1:
            label += f" {spec.model_name}"
        candidates.append(
            Candidate.of(
                spec,
                tokens[spec.model_name],
                name=label,
                template=name,
                k=k,
                draw=how,
                draw_seed=draw_seed,
                temperature=temperature,
                model=spec.model_name,
            )
        )
    unique = {c.key: c for c in candidates}  # two draws can give the same set (a small pool)
    return list(unique.values())
