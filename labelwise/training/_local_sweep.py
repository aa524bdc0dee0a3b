"""A sweep of local fine-tunes on Ray Tune: each trial trains here, with its own CPUs or GPUs.

A trial runs ``train_encoder`` and reports each evaluation's validation loss against the
examples seen, so ASHA compares trials after equal training and stops the poor ones. Every
trial keeps its checkpoints under ``OUT/trials/TRIAL``; the leaderboard then measures each
trial's kept weights on the same held-out rows, ranked by the sweep's metric, not by loss.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..evaluation import evaluate
from ..packaging import Classifier
from ._local import encoder_artifact
from ._local_loop import train_encoder
from ._local_recipe import LocalRecipe, LocalSplits, split_for_training
from ._sweep import SweepBoard, SweepOutcome, TrialRow, ray_session, trial_curve
from ._sweep_spec import SweepSpec, max_epochs, scheduler, search_algorithm

__all__ = ["run_local_sweep"]


@dataclass(frozen=True)
class _LocalContext:
    splits: LocalSplits
    recipe: dict[str, Any]
    seed: int
    device: str
    threads: int
    trials_dir: str


def _recipe(context: _LocalContext, config: dict[str, Any]) -> LocalRecipe:
    # Trials train end to end: the few-labels mode reports no loss until its head is fitted.
    return LocalRecipe.model_validate({**context.recipe, **config, "mode": "end_to_end"})


def _local_trial(config: dict[str, Any], context: _LocalContext) -> None:
    """One Tune trial: one local fine-tune, each evaluation reported as it happens."""
    import torch
    from ray import tune

    torch.set_num_threads(context.threads)
    recipe = _recipe(context, config)
    folder = Path(context.trials_dir) / tune.get_context().get_trial_id()

    def report(point: dict[str, float]) -> None:
        tune.report({**point, "examples_seen": point["step"] * recipe.batch_size})

    train_encoder(
        context.splits,
        recipe,
        seed=context.seed,
        device=context.device,
        checkpoints=folder,
        on_evaluation=report,
    )


def run_local_sweep(
    sweep: SweepSpec, base_dir: Path, out: Path, *, address: str | None, on_step: Callable[[str], None]
) -> SweepOutcome:
    """Split once, train the trials on Ray Tune, measure every trial's kept weights on the test rows."""
    assert sweep.local is not None
    data = sweep.data
    splits = split_for_training(
        base_dir / data.path,
        text_col=data.text_col,
        label_col=data.label_col,
        test_share=sweep.test_share,
        seed=sweep.seed,
        sample=data.sample,
    )
    on_step(
        f"{len(splits.train.texts)} training, {len(splits.validation.texts)} validation and "
        f"{len(splits.test.texts)} held-out test rows"
    )
    trials_dir = (out / "trials").resolve()
    trials_dir.mkdir(parents=True, exist_ok=True)
    gpus = sweep.local.gpus_per_trial
    context = _LocalContext(
        splits=splits,
        recipe=sweep.local.recipe,
        seed=sweep.seed,
        device="cuda" if gpus else "cpu",
        threads=max(1, int(sweep.local.cpus_per_trial)),
        trials_dir=str(trials_dir),
    )
    rows_per_epoch = len(splits.train.texts)
    with ray_session(address) as tune:
        on_step(f"sweeping on Ray Tune, at most {sweep.max_concurrent_jobs} trials at once")
        trainable = tune.with_resources(
            tune.with_parameters(_local_trial, context=context),
            {"cpu": sweep.local.cpus_per_trial, "gpu": gpus},
        )
        tune_config = tune.TuneConfig(
            metric="valid_loss",
            mode="min",
            num_samples=sweep.num_samples,
            search_alg=search_algorithm(sweep),
            scheduler=scheduler(sweep, rows_per_epoch, max_epochs(sweep)),
        )
        run_config = tune.RunConfig(name=sweep.name, storage_path=str((out / "ray").resolve()), verbose=0)
        space = {name: dim.tune_domain() for name, dim in sweep.space.items()}
        grid = tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config).fit()
        results = [grid[i] for i in range(len(grid))]
    rows = [_row(result, trials_dir) for result in results]
    on_step(f"measuring {sum(r.curve != [] for r in rows)} trials' kept weights on the test rows")
    best_files: dict[str, bytes] = {}
    specs, predictions = {}, {}
    for row in rows:
        folder = trials_dir / row.trial_id
        if not row.curve:
            continue
        recipe = _recipe(context, row.config)
        # Reads the trial's checkpoint (its kept weights); trains no further.
        trained = train_encoder(
            splits, recipe, seed=sweep.seed, device=context.device, checkpoints=folder, keep_training=False
        )
        artifact = encoder_artifact(
            f"{sweep.name}", splits, recipe, trained, seed=sweep.seed, runtime="torch"
        )
        with Classifier(artifact=artifact) as classifier:
            row.card, predicted = evaluate(
                classifier, splits.test, n_resamples=sweep.n_resamples, random_state=sweep.seed
            )
        specs[row.trial_id], predictions[row.trial_id] = artifact, predicted
    board = SweepBoard(sweep=sweep, metric=sweep.metric, rows=rows, test_rows=len(splits.test.texts))
    best = board.best
    best_spec = None
    if best is not None:
        best_spec, best_files = specs[best.trial_id].spec, specs[best.trial_id].model_files
    return SweepOutcome(
        board=board,
        best_spec=best_spec,
        best_predictions=predictions.get(best.trial_id, []) if best else [],
        test=splits.test,
        best_files=best_files,
    )


def _row(result: Any, trials_dir: Path) -> TrialRow:
    trial_id = (
        Path(result.path).name if not result.metrics.get("trial_id") else str(result.metrics["trial_id"])
    )
    curve = trial_curve(result)
    # Trained to its end (or stopped by its own patience), or stopped by the scheduler.
    state_file = trials_dir / trial_id / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    finished = state.get("stopped_early") or state.get("step", 0) >= state.get("total_steps", 1)
    return TrialRow(
        trial_id=trial_id,
        config=dict(result.config),
        job_id=None,
        status="failed" if result.error else "succeeded" if finished else "stopped early",
        steps=int(curve[-1]["step"]) if curve else 0,
        valid_loss=curve[-1]["valid_loss"] if curve else None,
        reported_accuracy=float(result.metrics["valid_accuracy"]) if curve else None,  # the last report
        curve=curve,
    )
