"""Core: what every area shares. It imports no other part of labelwise.

Settings (every ``LABELWISE_*`` variable), the base error and the spec error, ``Reason``, the
strict base model of specs, tables (CSV, JSONL, Parquet), running
coroutines from sync code, small SQLite tables keyed on a text's hash, and loopback ports.
"""

from ._aio import run_sync
from ._errors import LabelwiseError, SpecError
from ._keyed_sqlite import open_keyed_db, rows_for_keys, text_key
from ._ports import free_port
from ._reason import Reason
from ._settings import (
    DEFAULT_MIN_AGREEMENT,
    Settings,
    api_key,
    azure_management_url,
    default_db_url,
    labelwise_home,
)
from ._strict import StrictModel
from ._tables import not_utf8, read_table, write_atomic, write_frame, write_table
from ._wilson import wilson_interval

__all__ = [
    "DEFAULT_MIN_AGREEMENT",
    "LabelwiseError",
    "Reason",
    "Settings",
    "SpecError",
    "StrictModel",
    "api_key",
    "azure_management_url",
    "default_db_url",
    "free_port",
    "labelwise_home",
    "not_utf8",
    "open_keyed_db",
    "read_table",
    "rows_for_keys",
    "run_sync",
    "text_key",
    "wilson_interval",
    "write_atomic",
    "write_frame",
    "write_table",
]
