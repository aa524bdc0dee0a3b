"""The scikit-learn head of an embedding classifier, chosen by cross-validated weighted F1.

``packaging`` stores and loads the chosen head (skops, never a pickle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_FAMILIES", "FAMILIES", "HeadChoice", "fit_head"]


def _families(seed: int) -> dict[str, tuple[Any, dict[str, list[Any]]]]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    return {
        "logistic_regression": (LogisticRegression(max_iter=2000), {"C": [0.1, 1.0, 10.0]}),
        "linear_svm": (
            CalibratedClassifierCV(LinearSVC(random_state=seed), cv=3),
            {"estimator__C": [0.05, 0.5]},
        ),
        # Only when asked: on embeddings it takes minutes where the linear heads take seconds.
        # Early stopping on a tenth of each fold ends it when validation loss stops improving.
        "gradient_boosting": (
            HistGradientBoostingClassifier(
                random_state=seed, early_stopping=True, validation_fraction=0.1, n_iter_no_change=10
            ),
            {"max_iter": [200], "learning_rate": [0.1]},
        ),
    }


FAMILIES = ("logistic_regression", "linear_svm", "gradient_boosting")
DEFAULT_FAMILIES = ("logistic_regression", "linear_svm")


@dataclass(frozen=True)
class HeadChoice:
    family: str
    params: dict[str, Any]
    cv_weighted_f1: float
    estimator: Any
    candidates: list[dict[str, Any]]  # every family and setting tried, with its CV score


def fit_head(
    x: np.ndarray,
    y: list[str],
    *,
    families: tuple[str, ...] = DEFAULT_FAMILIES,
    folds: int = 5,
    seed: int = 0,
    n_jobs: int | None = -1,
    on_family: Callable[[str, int], None] | None = None,
) -> HeadChoice:
    """Grid-search each family with stratified folds; refit the best by weighted F1 on all of ``x``.

    ``on_family(family, fits)`` is called as each family's search starts. The folds and
    settings of a family are fitted in parallel on ``n_jobs`` processes (-1: one per core).
    """
    from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold

    known = _families(seed)
    unknown = sorted(set(families) - set(known))
    if unknown:
        raise ValueError(f"unknown head families {unknown}; choose from {', '.join(known)}")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    candidates: list[dict[str, Any]] = []
    best: tuple[float, str, GridSearchCV] | None = None
    for family in families:
        estimator, grid = known[family]
        if on_family is not None:
            on_family(family, len(ParameterGrid(grid)) * folds)
        search = GridSearchCV(estimator, grid, scoring="f1_weighted", cv=cv, n_jobs=n_jobs, refit=True)
        search.fit(x, y)
        for params, score in zip(
            search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
        ):
            candidates.append({"family": family, "params": params, "cv_weighted_f1": float(score)})
        if best is None or search.best_score_ > best[0]:
            best = (float(search.best_score_), family, search)
    assert best is not None
    score, family, search = best
    return HeadChoice(family, dict(search.best_params_), score, search.best_estimator_, candidates)
