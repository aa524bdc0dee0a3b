"""Reading and writing tables of records: CSV, JSONL or Parquet, chosen by file suffix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import LabelwiseError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["not_utf8", "read_table", "write_atomic", "write_frame", "write_table"]

FORMATS = (".csv", ".jsonl", ".parquet")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LabelwiseError(f"{path}: unknown format; use {', '.join(FORMATS)}")
    return suffix


def read_table(path: Path, *, required: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a table of at least one row (a file, or a directory of Parquet parts); a file that is
    not one is a ``LabelwiseError``.

    ``required`` maps each column that must be present to the option that names it, so the
    error can say how to choose another: ``{"text": "--text-col"}``.
    """
    if path.is_dir():  # the parts labelwise batch score writes, or any directory of Parquet files
        if not any(p.suffix == ".parquet" and not p.name.startswith(("_", ".")) for p in path.rglob("*")):
            raise LabelwiseError(f"{path} is a directory without .parquet files")
        suffix = ".parquet"
    else:
        suffix = _format(path)
        if not path.is_file():
            raise LabelwiseError(f"{path} does not exist")
        if path.stat().st_size == 0:
            raise LabelwiseError(f"{path} is empty")
    frame = _read(path, suffix)
    if frame.empty:
        raise LabelwiseError(f"{path} has no rows")
    for column, option in (required or {}).items():
        if column not in frame.columns:
            raise LabelwiseError(
                f"{path} has no column {column!r}; columns: {', '.join(map(str, frame.columns))} "
                f"(choose one with {option})"
            )
    return frame


def _read(path: Path, suffix: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if suffix == ".csv":
            return pd.read_csv(path, encoding="utf-8-sig")  # -sig: a byte-order mark is not data
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, encoding="utf-8")
        return pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc.object[exc.start], exc.start) from None
    except pd.errors.EmptyDataError:
        raise LabelwiseError(f"{path} holds no columns") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        # ValueError: malformed JSON lines, or pyarrow's ArrowInvalid on a bad Parquet file.
        kind = {".csv": "CSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}[suffix]
        raise LabelwiseError(f"{path} is not readable as {kind}: {str(exc).splitlines()[0]}") from None


def not_utf8(location: object, byte: int, offset: int) -> LabelwiseError:
    """The error for a text file that is not UTF-8, naming its first bad byte and what to do."""
    return LabelwiseError(
        f"{location} is not UTF-8 text (byte 0x{byte:02x} at offset {offset}); "
        "save it as UTF-8, e.g. iconv -f latin1 -t utf-8"
    )


def write_table(rows: Sequence[dict[str, Any]], path: Path, *, columns: Sequence[str]) -> None:
    """Write rows atomically: to a temporary file beside ``path``, then renamed over it."""
    import pandas as pd

    write_frame(pd.DataFrame(list(rows), columns=list(columns)), path)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``: a reader
    or a killed writer never leaves half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame atomically (CSV, JSONL or Parquet by suffix)."""
    suffix = _format(path)
    partial = path.with_name(f".{path.name}.partial")
    if suffix == ".csv":
        frame.to_csv(partial, index=False)
    elif suffix == ".jsonl":
        frame.to_json(partial, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(path)
