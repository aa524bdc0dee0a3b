"""Hyperparameter sweeps over fine-tuning jobs, on Ray Tune.

Each trial runs one job on the provider and reports its validation loss to Tune as the job
reports it, against the examples seen so far, so that ASHA compares trials after equal
training and stops the poor ones; labelwise then cancels their jobs (a stopped trial must not
keep paying). The training and validation files are uploaded once and shared by every trial.

The leaderboard ranks finished trials by what labelwise measures on the same held-out rows,
not by the loss or token accuracy the provider reports.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..core import LabelwiseError, run_sync
from ..evaluation import EvalCard, LabelledData, evaluate, higher_is_better, load_labelled
from ..packaging import Classifier, ClassifierArtifact, ClassifierSpec, Hyperparameters, Prediction
from ._jobs import (
    FileFacts,
    JobFollower,
    cancel_job,
    create_job,
    job_dialect,
    provider_client,
    require_success,
    spec_from_job,
    template_base_model,
)
from ._start import PreparedData, prepare
from ._sweep_spec import HYPERPARAMETERS, SweepSpec, max_epochs, scheduler, search_algorithm

__all__ = ["SweepBoard", "SweepOutcome", "TrialRow", "ray_session", "run_sweep", "trial_curve"]


@dataclass(frozen=True)
class _TrialContext:
    """What every trial shares: the spec, the uploaded files and where to record job ids."""

    sweep_name: str
    spec: ClassifierSpec
    base_model: str
    training_file: str
    validation_file: str
    rows_per_epoch: int
    seed: int
    suffix: str | None
    poll_interval_s: float
    jobs_dir: str


def _trial(config: dict[str, Any], context: _TrialContext) -> None:
    """One Tune trial: one fine-tuning job, its validation loss reported as it trains."""
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    run_sync(_run_job(config, context, trial_id, tune.report))


async def _run_job(
    config: dict[str, Any], context: _TrialContext, trial_id: str, report: Callable[[dict[str, Any]], None]
) -> None:
    spec, provider = context.spec, context.spec.backend.provider
    hyperparameters = Hyperparameters(**{k: v for k, v in config.items() if k in HYPERPARAMETERS})
    async with provider_client(spec.backend, context.base_model) as client:
        job_id = await create_job(
            client, provider=provider, launch_key=f"sweep {context.sweep_name} {trial_id}",
            base_model=config.get("base_model", context.base_model),
            training_file=context.training_file, validation_file=context.validation_file,
            hyperparameters=hyperparameters, seed=context.seed, suffix=context.suffix,
            dialect=job_dialect(spec.backend), queue_poll_s=context.poll_interval_s,
        )  # fmt: skip
        # Recorded before waiting: whatever ends the trial, the driver's _JobEnder ends the job.
        (Path(context.jobs_dir) / f"{trial_id}.json").write_text(json.dumps({"job_id": job_id}))
        follower = JobFollower(client, job_id, provider=provider)
        batch = int(config.get("batch_size") or 1)

        def on_update(_: Any, points: list[dict[str, float]]) -> None:
            for point in points:
                if "valid_loss" in point:
                    losses = {
                        "valid_loss": point["valid_loss"],
                        "train_loss": point.get("train_loss", math.nan),
                    }
                    progress = {"step": point["step"], "examples_seen": point["step"] * batch}
                    report({**losses, **progress, "job_id": job_id})

        job = await follower.follow(poll_s=context.poll_interval_s, on_update=on_update)
        require_success(job)  # a failed job fails its trial


class _JobEnder:
    """Ends the job of a trial that ended: cancelled if it still runs (a stopped trial must not
    keep paying). Tune's callback calls it as each trial ends; the sweep again for every trial."""

    def __init__(self, spec: ClassifierSpec, base_model: str, jobs_dir: Path) -> None:
        self.spec, self.base_model, self.jobs_dir = spec, base_model, jobs_dir

    def job_of(self, trial_id: str) -> str | None:
        recorded = self.jobs_dir / f"{trial_id}.json"
        return str(json.loads(recorded.read_text())["job_id"]) if recorded.exists() else None

    def end(self, trial_id: str) -> str | None:
        """The job's final status (``None``: the trial made no job)."""
        job_id = self.job_of(trial_id)
        if job_id is None:
            return None

        async def end() -> str:
            async with provider_client(self.spec.backend, self.base_model) as client:
                return await cancel_job(client, job_id, provider=self.spec.backend.provider)

        return run_sync(end())


class TrialRow(BaseModel):
    trial_id: str
    config: dict[str, Any]
    job_id: str | None
    status: str = Field(description="succeeded, stopped early (its job cancelled), or failed")
    steps: int
    valid_loss: float | None
    reported_accuracy: float | None
    model_id: str | None = None
    trained_tokens: int | None = None
    estimated_cost_usd: float | None = None
    card: EvalCard | None = None
    curve: list[dict[str, float]] = []

    def measured(self, metric: str) -> float | None:
        if self.card is None or metric not in self.card.metrics:
            return None
        return self.card.metrics[metric].value


class SweepBoard(BaseModel):
    sweep: SweepSpec
    metric: str
    rows: list[TrialRow]
    test_rows: int

    def ranked(self) -> list[TrialRow]:
        """Measured trials, best first by the sweep's metric; then the rest."""
        sign = -1 if higher_is_better(self.metric) else 1
        measured = [r for r in self.rows if r.measured(self.metric) is not None]
        measured.sort(key=lambda r: sign * (r.measured(self.metric) or 0.0))
        return measured + [r for r in self.rows if r.measured(self.metric) is None]

    @property
    def best(self) -> TrialRow | None:
        ranked = self.ranked()
        return ranked[0] if ranked and ranked[0].card is not None else None


@dataclass
class SweepOutcome:
    board: SweepBoard
    best_spec: ClassifierSpec | None
    best_predictions: list[Prediction] = field(default_factory=list)
    test: LabelledData | None = None
    best_files: dict[str, bytes] = field(default_factory=dict)
    """What packaging the best trial needs beside its spec (a local trial's weights)."""


def run_sweep(
    sweep: SweepSpec,
    base_dir: Path,
    out: Path,
    *,
    address: str | None = None,
    on_step: Callable[[str], None] = lambda message: None,
) -> SweepOutcome:
    """Prepare the data, upload it once, run the trials on Ray Tune, and measure the finished ones.

    A sweep with ``local`` trains its trials here instead (``run_local_sweep``).
    """
    if sweep.local is not None:
        from ._local_sweep import run_local_sweep

        return run_local_sweep(sweep, base_dir, out, address=address, on_step=on_step)
    assert sweep.base is not None  # the spec requires base or local
    spec = ClassifierSpec.from_yaml(base_dir / sweep.base)
    base_model = template_base_model(spec, where=f"the sweep's base {sweep.base}")
    data = load_labelled(
        base_dir / sweep.data.path, text_col=sweep.data.text_col, label_col=sweep.data.label_col,
        label_set=spec.task.labels, sample=sweep.data.sample, seed=sweep.data.seed,
    )  # fmt: skip
    prepared = prepare(
        data, spec, out, base_model=base_model, epochs=math.ceil(max_epochs(sweep)),
        test_share=sweep.test_share, seed=sweep.seed,
        usd_per_million_training_tokens=sweep.usd_per_million_training_tokens,
        validation_share=sweep.validation_share,
    )  # fmt: skip
    on_step(
        f"{prepared.export.train.rows} training, {prepared.export.validation.rows} validation and "
        f"{len(prepared.test.texts)} held-out test rows in {out}"
    )
    provider = spec.backend.provider

    async def upload() -> tuple[str, str]:
        from ._jobs import upload_file

        async with provider_client(spec.backend, base_model) as client:
            return (
                await upload_file(client, prepared.training_file, provider=provider),
                await upload_file(client, prepared.validation_file, provider=provider),
            )

    training_file, validation_file = run_sync(upload())
    known = dict(zip((training_file, validation_file), prepared.facts(), strict=True))
    jobs_dir = out / "trials"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    context = _TrialContext(
        sweep_name=sweep.name, spec=spec, base_model=base_model, training_file=training_file,
        validation_file=validation_file, rows_per_epoch=prepared.export.train.rows, seed=sweep.seed,
        suffix=sweep.suffix, poll_interval_s=sweep.poll_interval_s, jobs_dir=str(jobs_dir.resolve()),
    )  # fmt: skip
    ender = _JobEnder(spec, base_model, jobs_dir)
    try:
        results = _tune(sweep, context, ender, out, address=address, on_step=on_step)
    except BaseException:
        # Interrupted or broken: no job may go on running (and billing) without its trial.
        for recorded in sorted(jobs_dir.glob("*.json")):
            on_step(f"job {ender.job_of(recorded.stem)}: {ender.end(recorded.stem)}")
        raise
    rows = [_row(result, ender) for result in results]
    on_step(f"measuring {sum(r.status == 'succeeded' for r in rows)} fine-tuned models on the test rows")
    specs, predictions = _measure(rows, spec, prepared, known, sweep)
    board = SweepBoard(sweep=sweep, metric=sweep.metric, rows=rows, test_rows=len(prepared.test.texts))
    best = board.best
    return SweepOutcome(
        board=board,
        best_spec=specs.get(best.trial_id) if best else None,
        best_predictions=predictions.get(best.trial_id, []) if best else [],
        test=prepared.test,
    )


def _tune(
    sweep: SweepSpec,
    context: _TrialContext,
    ender: _JobEnder,
    out: Path,
    *,
    address: str | None,
    on_step: Callable[[str], None],
) -> list[Any]:
    from ray import tune

    class EndJobs(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            ender.end(trial.trial_id)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            ender.end(trial.trial_id)

    space = {name: dim.tune_domain() for name, dim in sweep.space.items()}
    with ray_session(address):
        on_step(f"sweeping on Ray Tune, at most {sweep.max_concurrent_jobs} jobs at once")
        # A trial waits on the provider: it needs little CPU; the job quota sets the concurrency.
        trainable = tune.with_resources(tune.with_parameters(_trial, context=context), {"cpu": 0.1})
        tune_config = tune.TuneConfig(
            metric="valid_loss",
            mode="min",
            scheduler=scheduler(sweep, context.rows_per_epoch, max_epochs(sweep)),
            search_alg=search_algorithm(sweep),
            num_samples=sweep.num_samples,
            reuse_actors=True,  # one worker process per concurrent job, not one per trial
        )
        run_config = tune.RunConfig(
            name=sweep.name, storage_path=str((out / "ray").resolve()), callbacks=[EndJobs()], verbose=0
        )
        grid = tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config).fit()
        return [grid[i] for i in range(len(grid))]


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray Tune, on ``address`` or a cluster started here (and stopped after); Ray's and Tune's
    prints go to stderr, since stdout holds only the command's result."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise LabelwiseError("sweeps run on Ray Tune: pip install 'labelwise[tune]'") from None
    with contextlib.redirect_stdout(sys.stderr):
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            yield tune
        finally:
            if started_here:
                ray.shutdown()


_STATUS = {"succeeded": "succeeded", "cancelled": "stopped early", "failed": "failed"}


def _row(result: Any, ender: _JobEnder) -> TrialRow:
    """A trial as it ended: its job's status (the scheduler may stop a trial at the very report
    where its job finished; the model is then there, and measured)."""
    trial_id = str(result.metrics.get("trial_id") or Path(result.path).name)
    job_status = ender.end(trial_id)
    curve = trial_curve(result)
    return TrialRow(
        trial_id=trial_id,
        config=dict(result.config),
        job_id=ender.job_of(trial_id),
        status=_STATUS.get(job_status or "failed", "failed"),
        steps=int(curve[-1]["step"]) if curve else 0,
        valid_loss=curve[-1]["valid_loss"] if curve else None,
        reported_accuracy=None,
        curve=curve,
    )


def trial_curve(result: Any) -> list[dict[str, float]]:
    """A Tune result's reports: step, examples seen, validation and training loss."""
    frame = result.metrics_dataframe
    if frame is None or "valid_loss" not in frame:
        return []
    columns = ("step", "examples_seen", "valid_loss", "train_loss")
    return [dict(zip(columns, map(float, values), strict=True)) for values in frame[list(columns)].values]


def _measure(
    rows: list[TrialRow],
    spec: ClassifierSpec,
    prepared: PreparedData,
    known: dict[str, FileFacts],
    sweep: SweepSpec,
) -> tuple[dict[str, ClassifierSpec], dict[str, list[Prediction]]]:
    """Each succeeded trial's model, measured on the held-out rows (fills in the rows)."""
    specs: dict[str, ClassifierSpec] = {}
    predictions: dict[str, list[Prediction]] = {}
    base_model = template_base_model(spec, where=f"spec {spec.name}")

    finished = [row for row in rows if row.status == "succeeded" and row.job_id is not None]

    async def read() -> list[ClassifierSpec]:
        async with provider_client(spec.backend, base_model) as client:  # one client for all jobs
            return [
                await spec_from_job(
                    client,
                    str(row.job_id),
                    spec,
                    known_files=known,
                    usd_per_million_training_tokens=sweep.usd_per_million_training_tokens,
                )  # fmt: skip
                for row in finished
            ]

    for row, trial_spec in zip(finished, run_sync(read()), strict=True):
        provenance = trial_spec.technique.job_provenance
        assert provenance is not None  # spec_from_job makes fine_tuned specs
        with Classifier(artifact=ClassifierArtifact(spec=trial_spec)) as classifier:
            card, predicted = evaluate(
                classifier, prepared.test, n_resamples=sweep.n_resamples, random_state=sweep.seed
            )
        row.card, row.model_id = card, trial_spec.model_name
        row.trained_tokens, row.estimated_cost_usd = provenance.trained_tokens, provenance.estimated_cost_usd
        row.reported_accuracy = provenance.reported_metrics.get("accuracy")
        specs[row.trial_id], predictions[row.trial_id] = trial_spec, predicted
    return specs, predictions
