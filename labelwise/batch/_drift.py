"""Drift checks: does current data look like the reference it is compared with?

Each check returns a ``DriftCheck`` (statistic, threshold, verdict); rendering is done elsewhere.
Defaults follow common practice: chi-square and Kolmogorov-Smirnov at p < 0.01 (with an effect
size floor, so a huge sample does not flag a negligible change), PSI above 0.2, Jensen-Shannon
distance above 0.1, and a Wasserstein distance above 10% of the reference's interquartile range.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    sizes = {"reference_n": len(ref), "current_n": len(cur)}
    if len(categories) > 1:
        chi2, p_value, _, _ = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
        # Significant and large enough to matter: the effect floor is the JS threshold.
        drifted = bool(p_value < _P_VALUE and js > _JS_DISTANCE / 2)
        chi = DriftCheck(feature, "chi_square", float(chi2), _P_VALUE, drifted, float(p_value), **sizes)
    else:
        chi = DriftCheck(feature, "chi_square", 0.0, _P_VALUE, False, 1.0, **sizes)
    return [
        chi,
        DriftCheck(feature, "psi", psi, _PSI, psi > _PSI, **sizes),
        DriftCheck(feature, "jensen_shannon", js, _JS_DISTANCE, js > _JS_DISTANCE, **sizes),
    ]


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
    threshold = _WASSERSTEIN_IQR_SHARE * iqr
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
        ),
        DriftCheck(feature, "wasserstein", distance, threshold, distance > threshold, **sizes),
    ]


def text_domain_drift(
    reference: Sequence[str],
    current: Sequence[str],
    *,
    max_per_side: int = 1000,
    permutations: int = 10,
    random_state: int = 0,
) -> DriftCheck:
    """Can a classifier tell current texts from reference texts? (domain classifier, ROC AUC)

    Texts are TF-IDF vectors (no embedding model needed); the AUC of a cross-validated logistic
    regression is compared with the 95th percentile of AUCs with shuffled sides, so the threshold
    adapts to the sample size.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(random_state)
    ref = [reference[i] for i in rng.permutation(len(reference))[:max_per_side]]
    cur = [current[i] for i in rng.permutation(len(current))[:max_per_side]]
    sizes = {"reference_n": len(ref), "current_n": len(cur)}
    if min(len(ref), len(cur)) < 10:
        return DriftCheck("text", "domain_classifier_auc", float("nan"), float("nan"), False, **sizes)
    features = TfidfVectorizer(max_features=5000, sublinear_tf=True).fit_transform(ref + cur)
    sides = np.asarray([0] * len(ref) + [1] * len(cur))
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state)
    model = LogisticRegression(max_iter=1000)

    def auc(labels: np.ndarray) -> float:
        scores = cross_val_predict(model, features, labels, cv=folds, method="predict_proba")[:, 1]
        return float(roc_auc_score(labels, scores))

    observed = auc(sides)
    null = [auc(rng.permutation(sides)) for _ in range(permutations)]
    threshold = max(float(np.quantile(null, 0.95)), 0.55)
    return DriftCheck("text", "domain_classifier_auc", observed, threshold, observed > threshold, **sizes)
