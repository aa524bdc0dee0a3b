"""Drift checks: does current data look like the reference it is compared with?

Each check returns a ``DriftCheck`` (statistic, threshold, verdict); rendering is done elsewhere.
Defaults follow common practice: chi-square and Kolmogorov-Smirnov at p < 0.01 (with an effect
size floor, so a huge sample does not flag a negligible change), PSI above 0.2, Jensen-Shannon
distance above 0.1, and a Wasserstein distance above 10% of the reference's interquartile range.
The last two must also exceed what random splits of the pooled values give, so small samples
do not raise alarms from noise alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

__all__ = ["DriftCheck", "categorical_drift", "numeric_drift", "text_domain_drift"]

_P_VALUE = 0.01
_PSI = 0.2
_JS_DISTANCE = 0.1
_WASSERSTEIN_IQR_SHARE = 0.1
_EPSILON = 1e-4


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One comparison of current data with its reference."""

    feature: str
    test: str
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None = None
    reference_n: int = 0
    current_n: int = 0
    rule: str = ""
    """When the check calls drift, in words: ``p < 0.01 and ...`` or ``statistic > threshold``."""


def categorical_drift(
    reference: Sequence[str | None], current: Sequence[str | None], *, feature: str = "predicted_label"
) -> list[DriftCheck]:
    """Chi-square, PSI and Jensen-Shannon checks of a categorical distribution (``None`` is a category)."""
    ref = ["<none>" if v is None else str(v) for v in reference]
    cur = ["<none>" if v is None else str(v) for v in current]
    categories = sorted(set(ref) | set(cur))
    ref_counts = np.asarray([ref.count(c) for c in categories], dtype=float)
    cur_counts = np.asarray([cur.count(c) for c in categories], dtype=float)
    p_ref = np.clip(ref_counts / max(ref_counts.sum(), 1.0), _EPSILON, None)
    p_cur = np.clip(cur_counts / max(cur_counts.sum(), 1.0), _EPSILON, None)
    p_ref, p_cur = p_ref / p_ref.sum(), p_cur / p_cur.sum()
    psi = float(np.sum((p_cur - p_ref) * np.log(p_cur / p_ref)))
    js = float(jensenshannon(p_ref, p_cur, base=2))
    js_threshold = max(_JS_DISTANCE, _js_noise(ref, cur, categories))
    sizes = {"reference_n": len(ref), "current_n": len(cur)}
    if len(categories) > 1:
        chi2, p_value, _, _ = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
        # Significant and large enough to matter: the effect floor is the JS threshold.
        drifted = bool(p_value < _P_VALUE and js > _JS_DISTANCE / 2)
        chi = DriftCheck(
            feature, "chi_square", float(chi2), _P_VALUE, drifted, float(p_value), **sizes,
            rule=f"p < {_P_VALUE:g} and Jensen-Shannon > {_JS_DISTANCE / 2:g}",
        )  # fmt: skip
    else:
        chi = DriftCheck(feature, "chi_square", 0.0, _P_VALUE, False, 1.0, **sizes, rule="one category only")
    return [
        chi,
        DriftCheck(feature, "psi", psi, _PSI, psi > _PSI, **sizes, rule=f"> {_PSI:g}"),
        DriftCheck(
            feature, "jensen_shannon", js, js_threshold, js > js_threshold, **sizes,
            rule=f"> {js_threshold:.3g} (above sampling noise)",
        ),
    ]  # fmt: skip


def _js_noise(ref: list[str], cur: list[str], categories: list[str], rounds: int = 100) -> float:
    """The 99th percentile of Jensen-Shannon distances between random splits of the pooled values."""
    rng = np.random.default_rng(0)
    pooled = np.asarray(ref + cur, dtype=object)
    index = {c: i for i, c in enumerate(categories)}
    codes = np.asarray([index[v] for v in pooled])
    distances = []
    for _ in range(rounds):
        shuffled = rng.permutation(codes)
        a = np.bincount(shuffled[: len(ref)], minlength=len(categories)) + _EPSILON
        b = np.bincount(shuffled[len(ref) :], minlength=len(categories)) + _EPSILON
        distances.append(jensenshannon(a / a.sum(), b / b.sum(), base=2))
    return float(np.quantile(distances, 0.99))


def numeric_drift(reference: Sequence[float], current: Sequence[float], *, feature: str) -> list[DriftCheck]:
    """Kolmogorov-Smirnov and Wasserstein checks of a numeric distribution (NaNs are left out)."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    sizes = {"reference_n": len(ref), "current_n": len(cur)}
    if not len(ref) or not len(cur):
        return []
    ks = stats.ks_2samp(ref, cur)
    iqr = float(np.subtract(*np.percentile(ref, [75, 25]))) or float(np.std(ref)) or 1.0
    distance = float(stats.wasserstein_distance(ref, cur))
    # At least 10% of the reference's IQR, and more than sampling noise alone gives: the 99th
    # percentile of distances between random splits of the pooled values (small samples are noisy).
    rng = np.random.default_rng(0)
    pooled = np.concatenate([ref, cur])
    null = []
    for _ in range(100):
        shuffled = rng.permutation(pooled)
        null.append(stats.wasserstein_distance(shuffled[: len(ref)], shuffled[len(ref) :]))
    threshold = max(_WASSERSTEIN_IQR_SHARE * iqr, float(np.quantile(null, 0.99)))
    return [
        # Significant and large enough to matter: a KS statistic of at least 0.1.
        DriftCheck(
            feature,
            "kolmogorov_smirnov",
            float(ks.statistic),
            _P_VALUE,
            bool(ks.pvalue < _P_VALUE and ks.statistic >= 0.1),
            float(ks.pvalue),
            **sizes,
            rule=f"p < {_P_VALUE:g} and statistic >= 0.1",
        ),
        DriftCheck(
            feature,
            "wasserstein",
            distance,
            threshold,
            distance > threshold,
            **sizes,
            rule=f"> {threshold:.3g} (above sampling noise)",
        ),  # fmt: skip
    ]


def text_domain_drift(
    reference: Sequence[str],
    current: Sequence[str],
    *,
    max_per_side: int = 1000,
    permutations: int = 10,
    random_state: int = 0,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> DriftCheck:
    """Can a classifier tell current texts from reference texts? (domain classifier, ROC AUC)

    Texts are TF-IDF vectors, or ``embed``'s vectors when an embedding model is given; the AUC
    of a cross-validated logistic regression is compared with the 95th percentile of AUCs with
    shuffled sides, so the threshold adapts to the sample size.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(random_state)
    ref = [reference[i] for i in rng.permutation(len(reference))[:max_per_side]]
    cur = [current[i] for i in rng.permutation(len(current))[:max_per_side]]
    sizes = {"reference_n": len(ref), "current_n": len(cur)}
    feature = "text" if embed is None else "text_embedding"
    if min(len(ref), len(cur)) < 10:
        return DriftCheck(
            feature, "domain_classifier_auc", float("nan"), float("nan"), False, **sizes,
            rule="not run: needs 10 texts on each side",
        )  # fmt: skip
    if embed is None:
        features = TfidfVectorizer(max_features=5000, sublinear_tf=True).fit_transform(ref + cur)
    else:
        features = embed(ref + cur)
    sides = np.asarray([0] * len(ref) + [1] * len(cur))
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state)
    model = LogisticRegression(max_iter=1000)

    def auc(labels: np.ndarray) -> float:
        scores = cross_val_predict(model, features, labels, cv=folds, method="predict_proba")[:, 1]
        return float(roc_auc_score(labels, scores))

    observed = auc(sides)
    null = [auc(rng.permutation(sides)) for _ in range(permutations)]
    threshold = max(float(np.quantile(null, 0.95)), 0.55)
    return DriftCheck(
        feature, "domain_classifier_auc", observed, threshold, observed > threshold, **sizes,
        rule=f"> {threshold:.3g} (above chance on shuffled sides)",
    )  # fmt: skip
