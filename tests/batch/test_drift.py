"""Drift checks on the Yelp data: quiet on a same-distribution split, loud on clear shifts."""

from __future__ import annotations

import pandas as pd
import pytest

from labelwise.batch._drift import categorical_drift, numeric_drift
from tests.conftest import YELP_CSV


@pytest.fixture(scope="module")
def yelp() -> pd.DataFrame:
    frame = pd.read_csv(YELP_CSV)
    frame["stars"] = frame["stars"].astype(str)
    frame["length"] = frame["text"].str.len()
    return frame


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = frame.sample(frac=0.5, random_state=seed)
    return reference, frame.drop(reference.index)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_false_alarm_on_a_same_distribution_split(yelp: pd.DataFrame, seed: int) -> None:
    reference, current = _split(yelp, seed)
    checks = categorical_drift(reference["stars"].tolist(), current["stars"].tolist())
    checks += numeric_drift(reference["length"], current["length"], feature="text_length")
    assert [c for c in checks if c.drifted] == []


def test_only_low_star_reviews_is_label_drift(yelp: pd.DataFrame) -> None:
    reference, current = _split(yelp, 0)
    shifted = current[current["stars"].isin(["1", "2"])]
    checks = {c.test: c for c in categorical_drift(reference["stars"].tolist(), shifted["stars"].tolist())}
    assert checks["chi_square"].drifted and checks["chi_square"].p_value is not None
    assert checks["psi"].drifted and checks["psi"].statistic > 1
    assert checks["jensen_shannon"].drifted


def test_only_long_reviews_is_length_drift(yelp: pd.DataFrame) -> None:
    reference, current = _split(yelp, 0)
    long_ones = current[current["length"] > current["length"].quantile(0.75)]
    checks = {
        c.test: c for c in numeric_drift(reference["length"], long_ones["length"], feature="text_length")
    }
    assert checks["kolmogorov_smirnov"].drifted and checks["wasserstein"].drifted
    assert checks["wasserstein"].statistic > checks["wasserstein"].threshold


def test_abstentions_are_a_category_of_their_own() -> None:
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 30 + [None] * 70
    checks = {c.test: c for c in categorical_drift(reference, current)}
    assert checks["psi"].drifted and checks["jensen_shannon"].drifted
    assert checks["chi_square"].current_n == 100


def test_numeric_checks_skip_missing_values() -> None:
    checks = numeric_drift([0.5, float("nan"), 0.7], [float("nan")], feature="confidence")
    assert checks == []


def test_text_domain_drift(yelp: pd.DataFrame) -> None:
    from labelwise.batch._drift import text_domain_drift

    reference, current = _split(yelp, 0)
    same = text_domain_drift(
        reference["text"].tolist(), current["text"].tolist(), max_per_side=400, permutations=5
    )
    assert not same.drifted and same.statistic < 0.6
    # Another domain: product support tickets instead of restaurant reviews.
    tickets = [
        f"Ticket {i}: my {item} stopped working after the firmware update, please send a replacement unit."
        for i, item in enumerate(["router", "printer", "laptop", "phone", "camera"] * 80)
    ]
    other = text_domain_drift(reference["text"].tolist(), tickets, max_per_side=400, permutations=5)
    assert other.drifted and other.statistic > 0.9
