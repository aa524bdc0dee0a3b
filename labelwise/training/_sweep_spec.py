"""A fine-tuning sweep declared as data, and what it means to Ray Tune.

The search space names the hyperparameters a supervised job takes (and the base model); each
dimension is a grid or a distribution. ``search_algorithm`` and ``scheduler`` turn the file into
Tune's objects: the job quota is enforced by the search algorithm, and ASHA measures training
in examples seen, so that trials of different batch sizes are compared after equal training.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ..core import StrictModel
from ..evaluation import METRICS, ORDINAL_METRICS, PROBABILITY_METRICS, DataRef
from ..packaging import read_yaml_model
from ._jobs import DEFAULT_USD_PER_MILLION_TRAINING_TOKENS

__all__ = [
    "HYPERPARAMETERS",
    "LOCAL_HYPERPARAMETERS",
    "LocalTrials",
    "Dimension",
    "EarlyStopping",
    "SweepSpec",
    "max_epochs",
    "scheduler",
    "search_algorithm",
]

HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")


class Dimension(StrictModel):
    """One dimension of the search space: exactly one of its fields."""

    grid: list[Any] | None = Field(default=None, min_length=1, description="Every value, each tried.")
    choice: list[Any] | None = Field(default=None, min_length=1, description="Values sampled from.")
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = Field(default=None, description="Integers from low to high, inclusive.")

    @model_validator(mode="after")
    def _one(self) -> Dimension:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of grid, choice, uniform, loguniform, randint")
        return self

    def tune_domain(self) -> Any:
        from ray import tune

        if self.grid is not None:
            return tune.grid_search(self.grid)
        if self.choice is not None:
            return tune.choice(self.choice)
        if self.uniform is not None:
            return tune.uniform(*self.uniform)
        if self.loguniform is not None:
            return tune.loguniform(*self.loguniform)
        assert self.randint is not None
        return tune.randint(self.randint[0], self.randint[1] + 1)  # Tune's high is exclusive


class EarlyStopping(StrictModel):
    """ASHA: after ``grace_epochs`` of training, keep the best 1/``reduction_factor`` at each rung."""

    grace_epochs: float = Field(default=1.0, gt=0)
    reduction_factor: float = Field(default=2.0, gt=1)


LOCAL_HYPERPARAMETERS = ("epochs", "batch_size", "learning_rate", "head_learning_rate", "max_tokens", "loss",
                         "warmup_share", "weight_decay")  # fmt: skip


class LocalTrials(StrictModel):
    """Trials trained here: each a Ray Tune trainable with its own CPUs (and GPUs)."""

    cpus_per_trial: float = Field(default=1, gt=0)
    gpus_per_trial: float = Field(default=0, ge=0)
    recipe: dict[str, Any] = Field(
        default_factory=dict, description="Fixed recipe settings (finetune start --local's) for every trial."
    )

    @field_validator("recipe")
    @classmethod
    def _a_recipe(cls, value: dict[str, Any]) -> dict[str, Any]:
        from ._local_recipe import LocalRecipe

        if value.get("mode", "end_to_end") != "end_to_end":
            raise ValueError("recipe: mode: sweep trials train end to end (they report a loss as they go)")
        try:
            LocalRecipe.model_validate(value)  # a typo fails the sweep file, not every trial
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"recipe: {problems}") from None
        return value


class SweepSpec(StrictModel):
    """A sweep declared as data (paths relative to the sweep file)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    base: str | None = Field(
        default=None,
        description="The fine_tuned spec every trial's artifact is derived from (provider sweeps).",
    )
    local: LocalTrials | None = Field(
        default=None, description="Train each trial here (finetune start --local) instead of on a provider."
    )
    data: DataRef
    test_share: float = Field(default=0.2, gt=0, lt=1)
    validation_share: float | None = Field(
        default=None, gt=0, lt=1, description="Default: enough rows for a +-5 point interval."
    )
    space: dict[str, Dimension] = Field(min_length=1)
    search: Literal["grid", "random", "optuna"] = Field(
        default="grid", description="grid: only grid dimensions; random: Tune's sampler; optuna: TPE."
    )
    num_samples: int = Field(default=1, ge=1, description="Samples (random, optuna) or repeats of the grid.")
    max_concurrent_jobs: int = Field(default=4, ge=1, description="The provider's quota of running jobs.")
    early_stopping: EarlyStopping | None = Field(default_factory=EarlyStopping)
    metric: str = Field(default="weighted_f1", description="The measured metric the leaderboard ranks by.")
    seed: int = 0
    suffix: str | None = None
    usd_per_million_training_tokens: float = Field(default=DEFAULT_USD_PER_MILLION_TRAINING_TOKENS, ge=0)
    poll_interval_s: float = Field(default=10.0, gt=0)
    n_resamples: int = Field(default=1000, ge=100)

    @model_validator(mode="after")
    def _space(self) -> SweepSpec:
        if (self.base is None) == (self.local is None):
            raise ValueError("give base (a fine_tuned spec, for a provider) or local (train here), not both")
        swept = LOCAL_HYPERPARAMETERS if self.local else HYPERPARAMETERS
        unknown = sorted(set(self.space) - {*swept, "base_model"})
        if unknown:
            raise ValueError(f"space: {unknown} are not swept; use {', '.join(swept)} or base_model")
        metrics = {**METRICS, **ORDINAL_METRICS, **PROBABILITY_METRICS}
        if self.metric not in metrics:
            raise ValueError(f"metric {self.metric!r} is not measured; one of {', '.join(sorted(metrics))}")
        sampled = [name for name, dim in self.space.items() if dim.grid is None]
        if self.search == "grid" and sampled:
            raise ValueError(
                f"search grid takes grid dimensions only; {sampled} are sampled: use search random"
            )
        if self.search == "optuna" and len(sampled) < len(self.space):
            raise ValueError("search optuna samples every dimension: use choice instead of grid")
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> SweepSpec:
        return read_yaml_model(cls, path, what="sweep")


def search_algorithm(sweep: SweepSpec) -> Any:
    if sweep.search == "optuna":
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        return ConcurrencyLimiter(OptunaSearch(seed=sweep.seed), max_concurrent=sweep.max_concurrent_jobs)
    from ray.tune.search import BasicVariantGenerator

    # Grid points and seeded random samples; it keeps to the job quota itself.
    return BasicVariantGenerator(random_state=sweep.seed, max_concurrent=sweep.max_concurrent_jobs)


def scheduler(sweep: SweepSpec, rows_per_epoch: int, max_epochs: float) -> Any:
    if sweep.early_stopping is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="examples_seen",
        max_t=max(1, math.ceil(max_epochs * rows_per_epoch)),
        grace_period=max(1, int(sweep.early_stopping.grace_epochs * rows_per_epoch)),
        reduction_factor=sweep.early_stopping.reduction_factor,
    )


def max_epochs(sweep: SweepSpec) -> float:
    if sweep.local is not None:
        from ._local_recipe import LocalRecipe

        dim = sweep.space.get("epochs")
        if dim is None:
            return float(LocalRecipe.model_validate(sweep.local.recipe).epochs)
    else:
        dim = sweep.space.get("n_epochs")
    if dim is None:
        return 3
    values = dim.grid or dim.choice or [(dim.randint or dim.uniform or dim.loguniform or (3, 3))[1]]
    return float(max(values))
