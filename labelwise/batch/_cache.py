"""Finished predictions keyed on (artifact tag, text SHA-256), in one SQLite file.

The same store serves as the persistent cache (a re-run costs nothing) and as the job's
checkpoint (a killed job resumes without re-scoring): each finished row is committed on its own,
so a kill loses at most the requests in flight, never a committed row. The predictions last
read or written are also kept in memory: a text repeated across the parts of a large job is
answered without a query or a parse.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from ..core import open_keyed_db, rows_for_keys, text_key
from ..packaging import Prediction

__all__ = ["ResultCache", "text_key"]


RECENT = 50_000
"""Predictions kept in memory (about 1 KB each): the distinct texts of several parts."""


class ResultCache:
    def __init__(self, path: Path, *, any_thread: bool = False, recent: int = RECENT) -> None:
        """``any_thread``: used from one thread at a time, not always the same (a Ray actor)."""
        self.path = path
        self.recent = recent
        self._recent: dict[tuple[str, str], Prediction] = {}
        self._db = open_keyed_db(
            path,
            "CREATE TABLE IF NOT EXISTS predictions ("
            " artifact_tag TEXT NOT NULL, text_sha256 TEXT NOT NULL, prediction TEXT NOT NULL,"
            " PRIMARY KEY (artifact_tag, text_sha256))",
            check_same_thread=not any_thread,
        )

    def get_many(self, artifact_tag: str, keys: Iterable[str]) -> dict[str, Prediction]:
        found, missing = {}, []
        for key in keys:
            hit = self._recent.get((artifact_tag, key))
            if hit is None:
                missing.append(key)
            else:
                found[key] = hit
        select = "SELECT text_sha256, prediction FROM predictions WHERE artifact_tag = ? AND text_sha256 IN"
        for key, value in rows_for_keys(self._db, select, [artifact_tag], missing):
            try:
                found[key] = self._remember(key, Prediction.model_validate_json(value))
            except ValidationError:
                continue  # written by an older labelwise in another shape: score the text again
        return found

    def put(self, key: str, prediction: Prediction) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
            (prediction.artifact_tag, key, prediction.model_dump_json()),
        )
        self._remember(key, prediction)

    def _remember(self, key: str, prediction: Prediction) -> Prediction:
        self._recent[(prediction.artifact_tag, key)] = prediction
        if len(self._recent) > self.recent:  # the oldest first
            del self._recent[next(iter(self._recent))]
        return prediction

    def close(self) -> None:
        self._db.close()
