"""Core: what every area shares. It imports no other part of labelwise.

Settings (every ``LABELWISE_*`` variable), the base error, tables (CSV, JSONL, Parquet), running
coroutines from sync code, small SQLite tables keyed on a text's hash, and loopback ports.
"""

from ._aio import run_sync
from ._errors import LabelwiseError
from ._keyed_sqlite import open_keyed_db, rows_for_keys, text_key
from ._ports import free_port
from ._settings import Settings, api_key, default_db_url, labelwise_home
from ._tables import read_table, write_atomic, write_frame, write_table
from ._wilson import wilson_interval

__all__ = [
    "LabelwiseError",
    "Settings",
    "api_key",
    "default_db_url",
    "free_port",
    "labelwise_home",
    "open_keyed_db",
    "read_table",
    "rows_for_keys",
    "run_sync",
    "text_key",
    "write_atomic",
    "write_frame",
    "wilson_interval",
    "write_table",
]
