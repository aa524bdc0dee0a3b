"""What `/feedback/summary` with a daily series costs on a large store, against the pandas peer.

A store (SQLite file, or PostgreSQL with --db-url) is filled with predictions spread over 30 days,
thumbs on a tenth of them, overrides naming a label on 3% and clicks on a fifth. Then:
  (a) labelwise: `PredictionStore.counts(bucket="day")` (grouped in the database) and `summarize`;
  (b) the peer a skilled engineer writes: read the rows with `pd.read_sql`, join, group by day,
      and Wilson intervals with scipy, in about fifteen lines.
It prints the median time of five runs and the peak Python memory of each (tracemalloc), and
checks that both find the same daily accuracy.

    .venv/bin/python bench/feedback_summary.py [--predictions 200000] [--db-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert
from sqlalchemy.orm import Session

from labelwise.monitoring import summarize
from labelwise.store import PredictionStore
from labelwise.store._store import FeedbackEventRow, FeedbackRow, PredictionRow

LABELS = ["1", "2", "3", "4", "5"]
START = datetime(2026, 10, 1, tzinfo=UTC)


def fill(store: PredictionStore, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ids = [uuid.uuid4().hex for _ in range(n)]
    made = [START + timedelta(seconds=float(s)) for s in rng.uniform(0, 30 * 86400, n)]
    labels = rng.choice(LABELS, n)
    predictions = [
        {"id": i, "created_at": t, "artifact_tag": "yelp:v1", "label": str(label), "probabilities": None,
         "confidence": 0.6, "reason": None, "latency_s": 0.05, "prompt_tokens": 0, "completion_tokens": 0,
         "model": "m", "attributes": {}, "text": None, "text_sha256": "0" * 64, "text_length": 100}
        for i, t, label in zip(ids, made, labels, strict=True)
    ]  # fmt: skip
    rated = rng.random(n) < 0.10
    thumbs = [
        {"prediction_id": ids[i], "thumbs": "up" if rng.random() < 0.7 else "down",
         "correct_label": None, "comment": None, "created_at": made[i], "updated_at": made[i]}
        for i in np.flatnonzero(rated)
    ]  # fmt: skip
    for row in thumbs:
        if row["thumbs"] == "down" and rng.random() < 0.5:
            row["correct_label"] = str(rng.choice(LABELS))
    events = [
        {"prediction_id": ids[i], "signal": "overridden", "value": None, "label": str(rng.choice(LABELS)),
         "created_at": made[i]}
        for i in np.flatnonzero((rng.random(n) < 0.03) & ~rated)
    ] + [
        {"prediction_id": ids[i], "signal": "clicked", "value": 1.0, "label": None, "created_at": made[i]}
        for i in np.flatnonzero(rng.random(n) < 0.2)
    ]  # fmt: skip
    with Session(store.engine) as session, session.begin():  # ORM bulk inserts take attribute names
        for table, rows in ((PredictionRow, predictions), (FeedbackRow, thumbs), (FeedbackEventRow, events)):
            for start in range(0, len(rows), 20_000):
                session.execute(insert(table), rows[start : start + 20_000])


def labelwise_daily(store: PredictionStore) -> dict[str, float | None]:
    summary = summarize(LABELS, store.counts(bucket="day")).by_artifact[0]
    return {p.start.date().isoformat(): p.accuracy for p in summary.series}


def pandas_daily(store: PredictionStore) -> dict[str, float | None]:
    from scipy.stats import binomtest

    with store.engine.connect() as connection:
        predictions = pd.read_sql("SELECT id, created_at, label FROM labelwise_predictions", connection)
        thumbs = pd.read_sql(
            "SELECT prediction_id, thumbs, correct_label FROM labelwise_feedback", connection
        )
        events = pd.read_sql(
            "SELECT id, prediction_id, signal, label FROM labelwise_feedback_events", connection
        )
    overrides = events[(events.signal == "overridden") & events.label.notna()].sort_values("id")
    overrides = overrides.drop_duplicates("prediction_id", keep="last")
    overrides = overrides[~overrides.prediction_id.isin(thumbs.prediction_id)]
    frame = predictions.merge(thumbs, left_on="id", right_on="prediction_id", how="left")
    frame = frame.merge(overrides[["prediction_id", "label"]], left_on="id", right_on="prediction_id",
                        how="left", suffixes=("", "_override"))  # fmt: skip
    truth = frame.correct_label.fillna(frame.label.where(frame.thumbs == "up")).fillna(frame.label_override)
    frame = frame.assign(day=pd.to_datetime(frame.created_at, utc=True).dt.floor("D"), truth=truth)
    daily = {}
    for day, group in frame.groupby("day"):
        known = group[group.truth.notna()]
        right = int((known.truth == known.label).sum())
        if len(known):
            binomtest(right, len(known)).proportion_ci(method="wilson")
        daily[day.date().isoformat()] = right / len(known) if len(known) else None
    return daily


def measure(work: Callable[[], Any], runs: int = 5) -> tuple[float, float, Any]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(times), peak, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--predictions", type=int, default=200_000)
    parser.add_argument("--db-url", help="an empty database (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = PredictionStore.from_url(args.db_url or f"sqlite:///{Path(folder) / 'bench.db'}")
        started = time.perf_counter()
        fill(store, args.predictions)
        filled = time.perf_counter() - started
        print(f"{store.engine.dialect.name}: {args.predictions:,} predictions stored in {filled:.1f} s")
        ours = measure(lambda: labelwise_daily(store))
        peer = measure(lambda: pandas_daily(store))
        assert ours[2].keys() == peer[2].keys()
        assert all(abs((ours[2][d] or 0) - (peer[2][d] or 0)) < 1e-9 for d in ours[2]), "the two disagree"
        print(f"{'':26}{'median time':>12}{'peak memory':>14}")
        for name, (seconds, memory, _) in (("labelwise counts+summarize", ours), ("pandas peer", peer)):
            print(f"{name:26}{seconds:>10.3f} s{memory:>11.1f} MiB")
        print(f"ratio (labelwise / peer): time {ours[0] / peer[0]:.2f}x, memory {ours[1] / peer[1]:.2f}x")
        store.close()


if __name__ == "__main__":
    main()
