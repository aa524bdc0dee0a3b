"""Cohorts to disaggregate metrics by: columns of the data, or cheap descriptors of the text.

A cohort is a categorical column whose values are group names. Numeric columns with many values
are cut into quantile buckets named by the range they hold ("53-98 words"), ordered by value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["as_cohort", "text_descriptors"]

_NEGATION = re.compile(r"\b(?:not|no|never|nothing|nobody|none|neither|nor|without)\b|n't\b", re.IGNORECASE)
_SHOUTING = re.compile(r"\b[A-Z]{3,}\b")
_MISSING = "(missing)"


def _bucket(values: pd.Series, unit: str, quantiles: int = 4) -> pd.Series:
    if values.nunique() <= quantiles:
        codes = values.rank(method="dense").astype(int)
    else:  # cut at value quantiles, so equal values always share a bucket
        codes = pd.qcut(values, quantiles, labels=False, duplicates="drop")
    names = {}
    for code in sorted(codes.unique()):
        low, high = values[codes == code].min(), values[codes == code].max()
        names[code] = (f"{low:g}" if low == high else f"{low:g}-{high:g}") + (f" {unit}" if unit else "")
    order = [names[code] for code in sorted(names)]
    return pd.Series(pd.Categorical(codes.map(names), categories=order, ordered=True), index=values.index)


def as_cohort(values: pd.Series, *, unit: str = "", max_groups: int = 10) -> pd.Series:
    """A column as group names: many-valued numbers become quantile buckets, gaps '(missing)'."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > max_groups:
        filled = values.fillna(values.median())
        bucketed = _bucket(filled, unit)
        if values.isna().any():
            bucketed = bucketed.cat.add_categories(_MISSING)
            bucketed[values.isna()] = _MISSING
        return bucketed
    names = values.map(lambda v: _MISSING if pd.isna(v) else str(v).removesuffix(".0"))
    return pd.Series(
        pd.Categorical(names, categories=sorted(names.unique()), ordered=True), index=values.index
    )


# descriptor -> (test on a text, what it looks for); groups are "with ..." and "without ...".
_FLAGS: dict[str, tuple[Callable[[str], bool], str]] = {
    "exclamation": (lambda t: "!" in t, "'!'"),
    "negation": (lambda t: bool(_NEGATION.search(t)), "negation"),
    "digits": (lambda t: any(c.isdigit() for c in t), "digits"),
    "all_caps_word": (lambda t: bool(_SHOUTING.search(t)), "an all-caps word"),
}


def text_descriptors(texts: Sequence[str]) -> pd.DataFrame:
    """Cohorts computed from the texts alone, for data without cohort columns."""
    columns = {"length": _bucket(pd.Series([len(t.split()) for t in texts], dtype=np.int64), "words")}
    for name, (test, what) in _FLAGS.items():
        with_, without = f"with {what}", f"without {what}"
        names = [with_ if test(t) else without for t in texts]
        columns[name] = pd.Series(pd.Categorical(names, categories=[with_, without], ordered=True))
    return pd.DataFrame(columns)
