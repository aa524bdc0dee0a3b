"""Every ``LABELWISE_*`` environment variable, read here and nowhere else.

| variable | default | what |
|---|---|---|
| LABELWISE_HOME | ~/.labelwise | runtime state: model files, logs, caches, the SQLite store |
| LABELWISE_MODEL | (none) | the artifact tag the service serves |
| LABELWISE_WORKERS | 1 | service worker processes |
| LABELWISE_DB_URL | sqlite:///$LABELWISE_HOME/predictions.db | the prediction store |
| LABELWISE_MAX_TEXT_CHARS | 20000 | longest text the service accepts |
| LABELWISE_MAX_BATCH_ITEMS | 256 | most texts in one /classify_batch |
| LABELWISE_MAX_BODY_BYTES | 16 MiB | largest request body |
| LABELWISE_LOG_TEXT | true | store texts (false: only their SHA-256) |
| LABELWISE_MAX_BATCH_SIZE | 64 | the embedding runner's adaptive batch size |
| LABELWISE_MAX_LATENCY_MS | 10000 | the embedding runner's batching wait |
| LABELWISE_METRICS_REFRESH_S | 5 | how often feedback gauges are recomputed from the store |
| LABELWISE_FEEDBACK_SIGNALS | accepted,overridden,... | implicit signals /feedback takes (at most 16) |
| LABELWISE_ESTIMATE_WINDOW | 1000 | latest predictions behind the service's estimated accuracy |
| LABELWISE_CANARY_INTERVAL_S | 0 | how often the service replays its golden set (0: never) |
| LABELWISE_CANARY_MIN_AGREEMENT | 0.95 | the canary alarms when agreement is clearly below this |
| LABELWISE_API_KEY | unset | bearer token of the service; read per request by ``api_key()``, never stored |
| LABELWISE_AZURE_MANAGEMENT_URL | https://management.azure.com | Azure Resource Manager (deployments) |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import LabelwiseError

__all__ = ["DEFAULT_MIN_AGREEMENT", "Settings", "api_key", "azure_management_url", "labelwise_home"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # 256 texts of 20,000 characters fit, with room
DEFAULT_SIGNALS = ("accepted", "overridden", "clicked", "dismissed", "copied")
DEFAULT_MIN_AGREEMENT = 0.95
"""The canary's agreement threshold, for ``labelwise canary`` and the service alike."""
_MAX_SIGNALS = 16  # each is a label value of a metric: the set stays small
_SIGNAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def labelwise_home(environ: Mapping[str, str] | None = None) -> Path:
    """Where labelwise keeps runtime state: ``$LABELWISE_HOME`` or ``~/.labelwise`` (created)."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("LABELWISE_HOME") or Path.home() / ".labelwise")
    home.mkdir(parents=True, exist_ok=True)
    return home


def api_key(environ: Mapping[str, str] | None = None) -> str:
    """The service's bearer token, or "" for no auth. Read per request so no object holds it."""
    environ = os.environ if environ is None else environ
    return environ.get("LABELWISE_API_KEY", "")


def azure_management_url(environ: Mapping[str, str] | None = None) -> str:
    """Azure Resource Manager's endpoint (another cloud's, or a test's, when set)."""
    environ = os.environ if environ is None else environ
    return (environ.get("LABELWISE_AZURE_MANAGEMENT_URL") or "https://management.azure.com").rstrip("/")


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    return int(_number(environ, name, default, int, "a whole number", positive=True))


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    return _number(environ, name, default, float, "a number", positive=False)


def _share(environ: Mapping[str, str], name: str, default: float) -> float:
    value = _float(environ, name, default)
    if value > 1:
        raise LabelwiseError(f"{name} must be a share between 0 and 1, got {environ[name]!r}")
    return value


def _number(
    environ: Mapping[str, str], name: str, default: float, kind: type[float], what: str, *, positive: bool
) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise LabelwiseError(f"{name} must be {what}, got {raw!r}") from None
    if not (value > 0 if positive else value >= 0):  # `not >=` also refuses NaN
        raise LabelwiseError(f"{name} must be {'positive' if positive else 'zero or more'}, got {raw!r}")
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise LabelwiseError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """labelwise's settings; ``Settings.from_env()`` reads them, the defaults are the table above."""

    model: str = ""
    workers: int = 1
    db_url: str = ""
    max_text_chars: int = 20_000
    max_batch_items: int = 256
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_text: bool = True
    max_batch_size: int = 64
    max_latency_ms: int = 10_000
    metrics_refresh_s: float = 5.0
    feedback_signals: tuple[str, ...] = DEFAULT_SIGNALS
    estimate_window: int = 1000
    canary_interval_s: float = 0.0
    canary_min_agreement: float = DEFAULT_MIN_AGREEMENT
    auth: bool = field(default=False, repr=False)
    """Whether LABELWISE_API_KEY is set (the key itself is never kept)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, model: str | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        return cls(
            model=model or environ.get("LABELWISE_MODEL", ""),
            workers=_int(environ, "LABELWISE_WORKERS", 1),
            db_url=environ.get("LABELWISE_DB_URL") or default_db_url(environ),
            max_text_chars=_int(environ, "LABELWISE_MAX_TEXT_CHARS", 20_000),
            max_batch_items=_int(environ, "LABELWISE_MAX_BATCH_ITEMS", 256),
            max_body_bytes=_int(environ, "LABELWISE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            log_text=_bool(environ, "LABELWISE_LOG_TEXT", True),
            max_batch_size=_int(environ, "LABELWISE_MAX_BATCH_SIZE", 64),
            max_latency_ms=_int(environ, "LABELWISE_MAX_LATENCY_MS", 10_000),
            metrics_refresh_s=_float(environ, "LABELWISE_METRICS_REFRESH_S", 5.0),
            feedback_signals=_signals(environ.get("LABELWISE_FEEDBACK_SIGNALS")),
            estimate_window=_int(environ, "LABELWISE_ESTIMATE_WINDOW", 1000),
            canary_interval_s=_float(environ, "LABELWISE_CANARY_INTERVAL_S", 0.0),
            canary_min_agreement=_share(environ, "LABELWISE_CANARY_MIN_AGREEMENT", DEFAULT_MIN_AGREEMENT),
            auth=bool(api_key(environ)),
        )

    def require_model(self) -> str:
        """The served artifact's tag; a clear error when none was named."""
        if not self.model:
            raise LabelwiseError(
                "no classifier to serve: set LABELWISE_MODEL to an artifact tag (name:version), "
                "or run `labelwise serve TAG`"
            )
        return self.model


def _signals(value: str | None) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_SIGNALS
    names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    bad = [name for name in names if not _SIGNAL_NAME.match(name)]
    if bad or not names or len(names) > _MAX_SIGNALS:
        raise LabelwiseError(
            f"LABELWISE_FEEDBACK_SIGNALS: 1 to {_MAX_SIGNALS} comma-separated names of lowercase letters, "
            f"digits and _ (up to 32 characters, starting with a letter); not {', '.join(bad) or value!r}"
        )
    return names


def default_db_url(environ: Mapping[str, str] | None = None) -> str:
    return f"sqlite:///{labelwise_home(environ) / 'predictions.db'}"
