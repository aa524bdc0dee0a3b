"""The prediction and feedback store (SQLAlchemy 2): SQLite in WAL mode or PostgreSQL.

Every prediction the service answers is one row; feedback is at most one row per prediction
(repeating it updates that row), so online evaluation can join the two. Each write is one
transaction: a row is either stored whole or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.sql import ColumnElement

from ..core import text_key
from ..packaging import Prediction

__all__ = [
    "Bucket",
    "EventRecord",
    "FeedbackCounts",
    "FeedbackEventRow",
    "FeedbackRecord",
    "FeedbackRow",
    "OVERRIDDEN",
    "PredictionRow",
    "PredictionStore",
    "true_label",
]

Bucket = Literal["hour", "day", "week"]
OVERRIDDEN = "overridden"
"""The implicit signal whose label, when it names one, is the prediction's true label."""


class _Base(DeclarativeBase):
    pass


class PredictionRow(_Base):
    __tablename__ = "labelwise_predictions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    artifact_tag: Mapped[str] = mapped_column(String(128), index=True)
    label: Mapped[str | None] = mapped_column(String(256))
    probabilities: Mapped[dict[str, float] | None] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float)  # Prediction.confidence
    reason: Mapped[str | None] = mapped_column(Text)  # a packaging.Reason value
    latency_s: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(256))
    attributes: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    text: Mapped[str | None] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    text_length: Mapped[int] = mapped_column(Integer)


_PREDICTIONS = cast(Table, PredictionRow.__table__)


class FeedbackRow(_Base):
    __tablename__ = "labelwise_feedback"

    prediction_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("labelwise_predictions.id", ondelete="CASCADE"), primary_key=True
    )
    thumbs: Mapped[str] = mapped_column(String(4))
    correct_label: Mapped[str | None] = mapped_column(String(256))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class FeedbackEventRow(_Base):
    """An implicit signal on a prediction (accepted, overridden, clicked, ...); many per prediction."""

    __tablename__ = "labelwise_feedback_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("labelwise_predictions.id", ondelete="CASCADE"), index=True
    )
    signal: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class EventRecord:
    prediction_id: str
    signal: str
    value: float | None
    label: str | None
    artifact_tag: str
    predicted_label: str | None


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    """Grouped counts for online evaluation, each row led by (artifact tag, bucket start).

    A bucket holds the predictions made in it, with the feedback they received since, so the
    feedback share of a bucket is a share of its own predictions.
    """

    predictions: list[tuple[str, datetime, str | None, int]]
    """(tag, bucket, predicted label, predictions)"""
    thumbs: list[tuple[str, datetime, str | None, str, str | None, int]]
    """(tag, bucket, predicted label, thumbs, correct label, predictions)"""
    overrides: list[tuple[str, datetime, str | None, str, int]]
    """(tag, bucket, predicted label, label named by the latest override, predictions): only
    predictions without thumbs, whose explicit feedback wins."""
    signals: list[tuple[str, datetime, str, int, int, float, int]]
    """(tag, bucket, signal, events, predictions with it, sum of values, values given)"""


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    prediction_id: str
    thumbs: str
    correct_label: str | None
    comment: str | None
    created: bool
    """True when this was the first feedback for the prediction, False when it updated one."""
    artifact_tag: str
    predicted_label: str | None


def true_label(predicted: str | None, thumbs: str, correct: str | None) -> str | None:
    """The true label when feedback tells it: a correction, or a thumbs-up of a label."""
    if correct is not None:
        return correct
    return predicted if thumbs == "up" else None


def _now() -> datetime:
    return datetime.now(UTC)


def _latest_overrides() -> Any:
    """Ids of each prediction's latest override that names a label: that label is its truth."""
    return (
        select(func.max(FeedbackEventRow.id))
        .where(FeedbackEventRow.signal == OVERRIDDEN, FeedbackEventRow.label.is_not(None))
        .group_by(FeedbackEventRow.prediction_id)
    )


def _as_utc(value: datetime | str) -> datetime:
    """A bucket start as an aware UTC datetime (SQLite gives text, PostgreSQL a naive UTC time)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; busy_timeout waits for the write lock
    # instead of failing when several workers write at once. synchronous=NORMAL skips the
    # fsync per commit: a committed row survives the process being killed (it is in the WAL),
    # and only an OS crash or power cut can lose the last moments.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # The driver's own implicit BEGIN is turned off so that _sqlite_begin decides how each
    # transaction starts.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    # A write transaction that reads first (feedback looks up its prediction) must take the
    # write lock up front: upgrading a read snapshot after another worker has written fails at
    # once with SQLITE_BUSY, which busy_timeout does not wait out.
    writes = connection.get_execution_options().get("labelwise_writes", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


class PredictionStore:
    """Predictions and feedback in one database, addressed by a SQLAlchemy URL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_engine = engine.execution_options(labelwise_writes=True)
        self._writes = sessionmaker(self._write_engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> PredictionStore:
        """Connect (creating the tables if needed): ``sqlite:///path.db`` or ``postgresql+psycopg://...``."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        _Base.metadata.create_all(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def prediction_row(
        prediction: Prediction, *, text: str, metadata: Mapping[str, Any], keep_text: bool
    ) -> dict[str, Any]:
        """The column values of a prediction's row, by column name, with its new id (``keep_text=False``:
        the hash only)."""
        probabilities = prediction.probabilities
        return {
            "id": uuid.uuid4().hex,
            "created_at": _now(),
            "artifact_tag": prediction.artifact_tag,
            "label": prediction.label,
            "probabilities": dict(probabilities) if probabilities else None,
            "confidence": prediction.confidence,
            "reason": prediction.reason.value if prediction.reason else None,
            "latency_s": prediction.latency_s,
            "prompt_tokens": prediction.prompt_tokens,
            "completion_tokens": prediction.completion_tokens,
            "model": prediction.model,
            "metadata": dict(metadata),
            "text": text if keep_text else None,
            "text_sha256": text_key(text),
            "text_length": len(text),
        }

    def log_predictions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store rows made by ``prediction_row``, all in one transaction (one multi-row INSERT)."""
        if rows:
            # SQLAlchemy Core, not the ORM: the rows are plain column values, and the ORM's bulk
            # insert only adds cost on the service's request path.
            with self._write_engine.begin() as connection:
                connection.execute(insert(_PREDICTIONS), list(rows))

    def put_feedback(
        self, prediction_id: str, *, thumbs: str, correct_label: str | None, comment: str | None
    ) -> FeedbackRecord | None:
        """Record feedback, replacing earlier feedback for the same prediction.

        Returns ``None`` when the prediction does not exist.
        """
        now = _now()
        values = {"thumbs": thumbs, "correct_label": correct_label, "comment": comment, "updated_at": now}
        with self._writes.begin() as session:
            prediction = session.get(PredictionRow, prediction_id)
            if prediction is None:
                return None
            tag, predicted = prediction.artifact_tag, prediction.label
            created = session.get(FeedbackRow, prediction_id) is None
            insert = self._insert(FeedbackRow).values(prediction_id=prediction_id, created_at=now, **values)
            # An upsert, so two concurrent first writes for one prediction still leave one row.
            session.execute(insert.on_conflict_do_update(index_elements=["prediction_id"], set_=values))
        return FeedbackRecord(
            prediction_id,
            thumbs,
            correct_label,
            comment,
            created=created,
            artifact_tag=tag,
            predicted_label=predicted,
        )

    def _insert(self, table: type[_Base]) -> Any:
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def add_event(
        self, prediction_id: str, *, signal: str, value: float | None, label: str | None
    ) -> EventRecord | None:
        """Record an implicit signal on a prediction; ``None`` when the prediction does not exist."""
        with self._writes.begin() as session:
            prediction = session.get(PredictionRow, prediction_id)
            if prediction is None:
                return None
            tag, predicted = prediction.artifact_tag, prediction.label
            session.add(
                FeedbackEventRow(
                    prediction_id=prediction_id, signal=signal, value=value, label=label, created_at=_now()
                )
            )
        return EventRecord(prediction_id, signal, value, label, artifact_tag=tag, predicted_label=predicted)

    def _bucket(self, unit: Bucket) -> ColumnElement[Any]:
        """The start of a prediction's hour, day or ISO week (Monday), in the database's own dialect."""
        column = PredictionRow.created_at
        if self.engine.dialect.name == "postgresql":
            return func.date_trunc(unit, func.timezone("UTC", column))
        shift = {"hour": ("%Y-%m-%d %H:00:00",), "day": ("%Y-%m-%d 00:00:00",)}
        # SQLite: 'weekday 0' moves to the coming Sunday (or stays), six days back is the Monday.
        fmt, *modifiers = shift.get(unit, ("%Y-%m-%d 00:00:00", "weekday 0", "-6 days"))
        return func.strftime(fmt, column, *modifiers)

    def counts(
        self, *, bucket: Bucket = "day", since: datetime | None = None, artifact_tag: str | None = None
    ) -> FeedbackCounts:
        """Predictions, thumbs, overrides and signals grouped by artifact and time bucket."""
        start = self._bucket(bucket).label("bucket")

        def grouped(keys: tuple[Any, ...], *aggregates: Any) -> Any:
            query = select(PredictionRow.artifact_tag, start, *keys, *aggregates)
            if since is not None:
                query = query.where(PredictionRow.created_at >= since)
            if artifact_tag is not None:
                query = query.where(PredictionRow.artifact_tag == artifact_tag)
            return query.group_by(PredictionRow.artifact_tag, start, *keys)

        latest_override = _latest_overrides()
        queries = {
            "predictions": grouped((PredictionRow.label,), func.count()),
            "thumbs": grouped(
                (PredictionRow.label, FeedbackRow.thumbs, FeedbackRow.correct_label), func.count()
            ).join(FeedbackRow, PredictionRow.id == FeedbackRow.prediction_id),
            "overrides": grouped((PredictionRow.label, FeedbackEventRow.label), func.count())
            .join(FeedbackEventRow, PredictionRow.id == FeedbackEventRow.prediction_id)
            .outerjoin(FeedbackRow, PredictionRow.id == FeedbackRow.prediction_id)
            .where(FeedbackEventRow.id.in_(latest_override), FeedbackRow.prediction_id.is_(None)),
            "signals": grouped(
                (FeedbackEventRow.signal,),
                func.count(),
                func.count(func.distinct(FeedbackEventRow.prediction_id)),
                func.coalesce(func.sum(FeedbackEventRow.value), 0.0),
                func.count(FeedbackEventRow.value),
            ).join(FeedbackEventRow, PredictionRow.id == FeedbackEventRow.prediction_id),
        }
        with self._sessions() as session:
            rows = {
                name: [(row[0], _as_utc(row[1]), *row[2:]) for row in session.execute(query)]
                for name, query in queries.items()
            }
        return FeedbackCounts(**rows)

    def recent_confidences(self, artifact_tag: str, *, limit: int) -> list[tuple[str | None, float | None]]:
        """(predicted label, confidence) of the artifact's latest ``limit`` predictions, newest first."""
        query = (
            select(PredictionRow.label, PredictionRow.confidence)
            .where(PredictionRow.artifact_tag == artifact_tag)
            .order_by(PredictionRow.created_at.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            return [(label, confidence) for label, confidence in session.execute(query)]

    def predictions(self, *, since: datetime | None = None) -> Iterator[PredictionRow]:
        """Logged predictions, oldest first, streamed."""
        query = select(PredictionRow).order_by(PredictionRow.created_at)
        if since is not None:
            query = query.where(PredictionRow.created_at >= since)
        with self._sessions() as session:
            yield from session.scalars(query.execution_options(yield_per=1000))

    def override_rows(
        self, *, since: datetime | None = None
    ) -> Iterator[tuple[PredictionRow, FeedbackEventRow]]:
        """Each prediction's latest override naming a label, where it has no thumbs, streamed."""
        query = (
            select(PredictionRow, FeedbackEventRow)
            .join(FeedbackEventRow, PredictionRow.id == FeedbackEventRow.prediction_id)
            .outerjoin(FeedbackRow, PredictionRow.id == FeedbackRow.prediction_id)
            .where(FeedbackEventRow.id.in_(_latest_overrides()), FeedbackRow.prediction_id.is_(None))
            .order_by(FeedbackEventRow.id)
        )
        if since is not None:
            query = query.where(PredictionRow.created_at >= since)
        with self._sessions() as session:
            for prediction, override in session.execute(query.execution_options(yield_per=1000)):  # noqa: UP028
                yield prediction, override

    def feedback_rows(self, *, since: datetime | None = None) -> Iterator[tuple[PredictionRow, FeedbackRow]]:
        """Feedback joined with its prediction, oldest first, streamed."""
        query = (
            select(PredictionRow, FeedbackRow)
            .join(FeedbackRow, PredictionRow.id == FeedbackRow.prediction_id)
            .order_by(FeedbackRow.updated_at, FeedbackRow.prediction_id)
        )
        if since is not None:
            query = query.where(PredictionRow.created_at >= since)
        with self._sessions() as session:
            for prediction, feedback in session.execute(query.execution_options(yield_per=1000)):  # noqa: UP028
                yield prediction, feedback
