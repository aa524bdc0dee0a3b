"""Prompt experiments: a grid of templates x example sets x temperatures x models, as data.

Every candidate is a spec derived from a base spec, so its would-be artifact tag names it in
the leaderboard. All candidates, the most-frequent baseline and (if named) the production
artifact are scored on the same seeded sample; the example pool is drawn from other rows, so no
example is also a test item.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..core import LabelwiseError, StrictModel
from ..packaging import (
    Classifier,
    ClassifierArtifact,
    ClassifierSpec,
    Template,
    load_artifact,
    measure_label_tokens,
    read_yaml_model,
)
from ._candidates import derive_spec, draw_examples
from ._evaluate import EvalCard, LabelledData, evaluate, load_labelled, most_frequent_baseline

__all__ = ["ExperimentSpec", "Leaderboard", "leaderboard_records", "run_experiment"]


class DataRef(StrictModel):
    path: str
    text_col: str = "text"
    label_col: str = "label"
    sample: int | None = Field(default=200, gt=0)
    seed: int = 0


class ExampleSets(StrictModel):
    k: list[int] = Field(default_factory=lambda: [3], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    pool_size: int = Field(
        default=300, gt=0, description="Rows drawn (outside the eval sample) to pick examples from."
    )


class ExperimentSpec(StrictModel):
    """An experiment declared as data: what varies, on which data, with which seed."""

    name: str
    base: str = Field(description="The spec every candidate is derived from (path relative to this file).")
    data: DataRef
    templates: dict[str, str] = Field(
        min_length=1, description="Name -> template; {examples} makes it few-shot."
    )
    example_sets: ExampleSets = Field(default_factory=ExampleSets)
    temperatures: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    models: list[str | None] = Field(default=[None], min_length=1, description="None: the base spec's model.")
    production: str | None = Field(default=None, description="Artifact tag to compare every candidate with.")
    n_resamples: int = Field(default=500, ge=100)
    random_state: int = 0

    @classmethod
    def from_yaml(cls, path: Path) -> tuple[ExperimentSpec, Path]:
        return read_yaml_model(cls, path, what="experiment"), path.parent


class Candidate(BaseModel):
    name: str
    template: str
    k: int
    example_seed: int | None
    temperature: float
    model: str
    tag: str


class LeaderboardRow(BaseModel):
    candidate: Candidate
    card: EvalCard
    spec: ClassifierSpec


class Leaderboard(BaseModel):
    experiment: ExperimentSpec
    rows: list[LeaderboardRow]
    baseline: dict[str, float]
    production: LeaderboardRow | None

    def best(self, metric: str = "weighted_f1") -> LeaderboardRow:
        return max(self.rows, key=lambda row: row.card.metrics[metric].value)


def run_experiment(
    experiment: ExperimentSpec,
    root: Path,
    *,
    classifier_factory: Callable[[ClassifierArtifact], Classifier] | None = None,
    on_candidate: Callable[[int, int, Candidate], None] | None = None,
) -> Leaderboard:
    """Score every candidate on the same sample; the leaderboard is sorted by weighted F1."""
    base = ClassifierSpec.from_yaml(root / experiment.base)
    labels = base.task.labels
    data_path = root / experiment.data.path
    ref = experiment.data
    test = load_labelled(
        data_path,
        text_col=ref.text_col,
        label_col=ref.label_col,
        label_set=labels,
        sample=ref.sample,
        seed=ref.seed,
    )
    factory = classifier_factory or (lambda artifact: Classifier(artifact=artifact, max_concurrency=16))
    combos = []
    for (name, template), temperature, model in itertools.product(
        experiment.templates.items(), experiment.temperatures, experiment.models
    ):
        few_shot = "examples" in Template(template).vars()
        sets = (
            itertools.product(experiment.example_sets.k, experiment.example_sets.seeds)
            if few_shot
            else [(0, None)]
        )
        combos += [(name, template, k, seed, temperature, model) for k, seed in sets]
    pool = None
    if any(k for _, _, k, _, _, _ in combos):
        pool = _pool(data_path, ref, labels, test, experiment.example_sets.pool_size)
    rows = []
    tokens: dict[str, Any] = {}  # label tokens depend only on the model (logprobs scoring)
    for i, (name, template, k, seed, temperature, model) in enumerate(combos):
        examples = draw_examples(pool, k, seed) if k and pool is not None and seed is not None else []
        spec = derive_spec(
            base,
            name=f"{experiment.name}-{i}",
            template=template,
            examples=examples,
            temperature=temperature,
            backend=None if model is None else {"model": model},
        )
        if spec.model_name not in tokens:
            tokens[spec.model_name] = measure_label_tokens(spec)
        artifact = ClassifierArtifact(spec=spec, label_tokens=tokens[spec.model_name])
        candidate = Candidate(
            name=f"{name} k={k}" + (f" seed={seed}" if seed is not None else "") + f" t={temperature}",
            template=name,
            k=k,
            example_seed=seed,
            temperature=temperature,
            model=spec.model_name,
            tag=str(artifact.tag),
        )
        if on_candidate is not None:
            on_candidate(i, len(combos), candidate)
        card, _ = evaluate(
            factory(artifact), test, n_resamples=experiment.n_resamples, random_state=experiment.random_state
        )
        rows.append(LeaderboardRow(candidate=candidate, card=card, spec=spec))
    rows.sort(key=lambda row: row.card.metrics["weighted_f1"].value, reverse=True)
    production = None
    if experiment.production:
        artifact = load_artifact(experiment.production)
        card, _ = evaluate(
            factory(artifact), test, n_resamples=experiment.n_resamples, random_state=experiment.random_state
        )
        candidate = Candidate(
            name="production",
            template="-",
            k=0,
            example_seed=None,
            temperature=artifact.spec.decoding.temperature,
            model=artifact.spec.model_name,
            tag=str(artifact.tag),
        )
        production = LeaderboardRow(candidate=candidate, card=card, spec=artifact.spec)
    return Leaderboard(
        experiment=experiment,
        rows=rows,
        baseline=most_frequent_baseline(test.labels, labels=labels, ordinal=base.task.ordinal),
        production=production,
    )


def _pool(path: Path, ref: DataRef, labels: list[str], test: LabelledData, size: int) -> LabelledData:
    """Labelled rows to pick examples from: rows of the same file outside the test sample."""
    everything = load_labelled(path, text_col=ref.text_col, label_col=ref.label_col, label_set=labels)
    held = set(test.texts)
    candidates = [i for i, text in enumerate(everything.texts) if text not in held]
    chosen = random.Random(ref.seed + 1).sample(candidates, min(size, len(candidates)))
    return LabelledData(
        texts=[everything.texts[i] for i in chosen],
        labels=[everything.labels[i] for i in chosen],
        dataset=everything.dataset,
    )


def leaderboard_records(board: Leaderboard) -> list[dict[str, Any]]:
    """Flat rows for CSV: one per candidate, production and baseline last."""
    records = []
    entries = [("candidate", row) for row in board.rows]
    if board.production is not None:
        entries.append(("production", board.production))
    for kind, row in entries:
        record: dict[str, Any] = {"kind": kind, **row.candidate.model_dump()}  # the spec is in the JSON
        for metric, estimate in row.card.metrics.items():
            record[metric] = estimate.value
            record[f"{metric}_low"] = estimate.low
            record[f"{metric}_high"] = estimate.high
        records.append(record)
    records.append({"kind": "most_frequent_baseline", "name": "most frequent label", **board.baseline})
    return records


def mlflow_experiment(tracking_uri: str, name: str, *, artifact_dir: Path) -> tuple[Any, str]:
    """The mlflow module, pointed at ``tracking_uri``, and the id of experiment ``name`` (made if new)."""
    try:
        import mlflow
    except ImportError:
        raise LabelwiseError(
            "MLflow logging needs the 'mlflow' extra: pip install 'labelwise[mlflow]'"
        ) from None
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return mlflow, str(experiment.experiment_id)
    return mlflow, str(mlflow.create_experiment(name, artifact_location=artifact_dir.resolve().as_uri()))


def log_to_mlflow(board: Leaderboard, tracking_uri: str, *, artifact_dir: Path) -> str:
    """One MLflow run per candidate (parameters, metrics with intervals), plus the leaderboard files."""
    name = f"labelwise-{board.experiment.name}"
    mlflow, experiment_id = mlflow_experiment(tracking_uri, name, artifact_dir=artifact_dir)
    for row in board.rows + ([board.production] if board.production else []):
        with mlflow.start_run(experiment_id=experiment_id, run_name=row.candidate.name):
            mlflow.set_tags({"artifact_tag": row.candidate.tag, "dataset_sha256": row.card.dataset.sha256})
            mlflow.log_params({k: v for k, v in row.candidate.model_dump().items() if v is not None})
            for metric, estimate in row.card.metrics.items():
                mlflow.log_metrics(
                    {metric: estimate.value, f"{metric}_low": estimate.low, f"{metric}_high": estimate.high}
                )
    with mlflow.start_run(experiment_id=experiment_id, run_name="leaderboard"):
        mlflow.log_dict(board.model_dump(mode="json"), "leaderboard.json")
        mlflow.log_metrics({f"baseline_{k}": v for k, v in board.baseline.items()})
    return experiment_id
