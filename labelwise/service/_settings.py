"""The service's settings, read from the environment once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..packaging import LabelwiseError, labelwise_home

__all__ = ["ServiceSettings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def default_db_url() -> str:
    return f"sqlite:///{labelwise_home() / 'predictions.db'}"


def int_setting(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LabelwiseError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise LabelwiseError(f"{name} must be positive, got {value}")
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise LabelwiseError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Environment variables, all prefixed LABELWISE_:

    MODEL (artifact tag), DB_URL (SQLAlchemy URL; a SQLite file under LABELWISE_HOME by default),
    MAX_TEXT_CHARS (20000), MAX_BATCH_ITEMS (256), LOG_TEXT (true: store texts; false: only their
    SHA-256). LABELWISE_API_KEY and LABELWISE_MAX_BODY_BYTES are read by the request guards;
    the key is never stored here.
    """

    model: str
    db_url: str
    max_text_chars: int = 20_000
    max_batch_items: int = 256
    log_text: bool = True

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, model: str | None = None
    ) -> ServiceSettings:
        environ = os.environ if environ is None else environ
        model = model or environ.get("LABELWISE_MODEL", "")
        if not model:
            raise LabelwiseError(
                "no classifier to serve: set LABELWISE_MODEL to an artifact tag (name:version), "
                "or run `labelwise serve TAG`"
            )
        return cls(
            model=model,
            db_url=environ.get("LABELWISE_DB_URL") or default_db_url(),
            max_text_chars=int_setting(environ, "LABELWISE_MAX_TEXT_CHARS", 20_000),
            max_batch_items=int_setting(environ, "LABELWISE_MAX_BATCH_ITEMS", 256),
            log_text=_bool(environ, "LABELWISE_LOG_TEXT", True),
        )
