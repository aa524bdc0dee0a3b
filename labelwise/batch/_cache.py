"""Finished predictions keyed on (artifact tag, text SHA-256), in one SQLite file.

The same store serves as the persistent cache (a re-run costs nothing) and as the job's
checkpoint (a killed job resumes without re-scoring): each finished row is committed on its own,
so a kill loses at most the requests in flight, never a committed row.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ..packaging import Prediction

__all__ = ["ResultCache", "text_key"]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS predictions ("
            " artifact_tag TEXT NOT NULL, text_sha256 TEXT NOT NULL, prediction TEXT NOT NULL,"
            " PRIMARY KEY (artifact_tag, text_sha256))"
        )

    def get_many(self, artifact_tag: str, keys: Iterable[str]) -> dict[str, Prediction]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Prediction] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = (
                "SELECT text_sha256, prediction FROM predictions WHERE artifact_tag = ? AND text_sha256 IN "
            )
            rows = self._db.execute(f"{query}({marks})", [artifact_tag, *chunk])
            found.update((key, Prediction.model_validate_json(value)) for key, value in rows)
        return found

    def put(self, key: str, prediction: Prediction) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
            (prediction.artifact_tag, key, prediction.model_dump_json()),
        )

    def close(self) -> None:
        self._db.close()
