"""The one seeded, stratified split of labelled data: test rows are held out first, one row per text.

Every split in labelwise (a fine-tune's test and validation rows, a trained head's held-out rows,
calibration's fitting rows) goes through ``stratified_split``, so they follow one rule: each
label keeps its share on both sides, and a label with a single row stays on the fitting side
(it cannot be on both; sklearn would refuse to stratify at all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..core import LabelwiseError
from ._evaluate import LabelledData

__all__ = ["split_labelled", "stratified_split"]


def stratified_split(
    labels: Sequence[object], *, test_size: float | int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rest, test) row indices: ``test_size`` rows (a share, or a count) held out, stratified by label.

    Labels with one row go to ``rest``. Indices come in sklearn's seeded order.
    """
    from sklearn.model_selection import train_test_split

    counts = Counter(labels)
    single = [i for i, label in enumerate(labels) if counts[label] < 2]
    shared = np.asarray([i for i, label in enumerate(labels) if counts[label] >= 2], dtype=int)
    if isinstance(test_size, float) and single:
        test_size = round(test_size * len(labels))  # the share of all rows, not of the shared ones
    try:
        rest, test = train_test_split(
            shared, test_size=test_size, random_state=seed, stratify=[labels[i] for i in shared]
        )
    except ValueError as exc:
        raise LabelwiseError(
            f"cannot hold out {test_size} of {len(labels)} rows stratified by label: {exc}"
        ) from None
    return np.concatenate([rest, np.asarray(single, dtype=int)]), test


def split_labelled(
    data: LabelledData, *, test_size: float | int, seed: int
) -> tuple[LabelledData, LabelledData]:
    """(rest, test): a seeded, stratified split, one row per text so no text is on both sides.

    A repeated text keeps its first row.
    """
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(data.texts):
        if text.strip() not in seen:
            seen.add(text.strip())
            keep.append(i)
    rest, test = stratified_split([data.labels[i] for i in keep], test_size=test_size, seed=seed)

    return data.subset([keep[i] for i in rest]), data.subset([keep[i] for i in test])
