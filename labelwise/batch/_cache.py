"""Finished predictions keyed on (artifact tag, text SHA-256), in one SQLite file.

The same store serves as the persistent cache (a re-run costs nothing) and as the job's
checkpoint (a killed job resumes without re-scoring): each finished row is committed on its own,
so a kill loses at most the requests in flight, never a committed row.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from ..core import open_keyed_db, rows_for_keys, text_key
from ..packaging import Prediction

__all__ = ["ResultCache", "text_key"]


class ResultCache:
    def __init__(self, path: Path, *, any_thread: bool = False) -> None:
        """``any_thread``: used from one thread at a time, not always the same (a Ray actor)."""
        self.path = path
        self._db = open_keyed_db(
            path,
            "CREATE TABLE IF NOT EXISTS predictions ("
            " artifact_tag TEXT NOT NULL, text_sha256 TEXT NOT NULL, prediction TEXT NOT NULL,"
            " PRIMARY KEY (artifact_tag, text_sha256))",
            check_same_thread=not any_thread,
        )

    def get_many(self, artifact_tag: str, keys: Iterable[str]) -> dict[str, Prediction]:
        select = "SELECT text_sha256, prediction FROM predictions WHERE artifact_tag = ? AND text_sha256 IN"
        found = {}
        for key, value in rows_for_keys(self._db, select, [artifact_tag], list(keys)):
            try:
                found[key] = Prediction.model_validate_json(value)
            except ValidationError:
                continue  # written by an older labelwise in another shape: score the text again
        return found

    def put(self, key: str, prediction: Prediction) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
            (prediction.artifact_tag, key, prediction.model_dump_json()),
        )

    def close(self) -> None:
        self._db.close()
