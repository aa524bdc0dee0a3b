"""Input tables read in parts of a fixed number of rows, never whole: CSV, JSON Lines or Parquet
(a file, or a directory of Parquet files), compressed or not, on a local disk or behind a URL.

``s3://``, ``gs://`` and ``hdfs://`` go through pyarrow's own filesystems; any other URL
(``az://``, ``http://``, ``memory://``...) through fsspec, with the package its protocol needs
(the ``cloud`` extra brings fsspec). CSV cells are read as text, so that every part has the same
columns and types whatever the first rows held, and a CSV written back holds the same cells.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import LabelwiseError, not_utf8

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = ["TableSource", "filesystem_for", "is_url", "table_format"]

FORMATS = {".csv": "CSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")
READ_BLOCK_BYTES = 4 << 20


def is_url(location: str) -> bool:
    return "://" in location


def filesystem_for(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem ``location`` lives on, and its path there."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    if not is_url(location) or location.startswith("file://"):
        return pafs.LocalFileSystem(), str(Path(location.removeprefix("file://")).absolute())
    try:
        return pafs.FileSystem.from_uri(location)  # type: ignore[no-any-return]
    except pa.ArrowInvalid:  # not a scheme pyarrow knows
        pass
    try:
        import fsspec
    except ImportError:
        raise LabelwiseError(f"{location}: this URL needs fsspec: pip install 'labelwise[cloud]'") from None
    try:
        filesystem, path = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as exc:
        raise LabelwiseError(f"{location}: {exc}") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path


def table_format(location: str) -> str:
    """``.csv``, ``.jsonl`` or ``.parquet``, from the name (a compression suffix aside)."""
    name = location.rstrip("/").rsplit("/", 1)[-1].lower()
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix not in FORMATS:
        raise LabelwiseError(
            f"{location}: unknown format; use {', '.join(FORMATS)} (or a directory of .parquet)"
        )
    return suffix


@dataclass(frozen=True)
class TableSource:
    """A table to read part by part. ``open`` checks it is there, readable, not empty and has
    ``text_col``, and learns its schema (and a Parquet table's row counts) once."""

    location: str
    suffix: str
    files: tuple[str, ...]
    """The files, in reading order: one, or a directory's Parquet files sorted by name."""
    schema: pa.Schema | None = None
    file_rows: tuple[int, ...] | None = None
    """Parquet: each file's rows, from its footer; ``None`` for CSV and JSON Lines."""

    @classmethod
    def open(cls, location: str | Path, *, text_col: str, option: str = "--text-col") -> TableSource:
        import pyarrow.fs as pafs

        location = str(location)
        filesystem, path = filesystem_for(location)
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(path, recursive=True)
            files = sorted(
                f.path for f in filesystem.get_file_info(selector)
                if f.type == pafs.FileType.File and f.path.endswith(".parquet")
                and not Path(f.path).name.startswith(("_", "."))
            )  # fmt: skip
            if not files:
                raise LabelwiseError(f"{location} is a directory without .parquet files")
            suffix = ".parquet"
        elif info.type == pafs.FileType.File:
            suffix, files = table_format(location), [path]
            if info.size == 0:
                raise LabelwiseError(f"{location} is empty")
        else:
            raise LabelwiseError(f"{location} does not exist")
        source = cls(location=location, suffix=suffix, files=tuple(files))._learned()
        if text_col not in source.columns:
            raise LabelwiseError(
                f"{location} has no column {text_col!r}; columns: {', '.join(source.columns)} "
                f"(choose one with {option})"
            )
        return source

    def _learned(self) -> TableSource:
        """This source with its schema and row counts, read once; a table without rows refused."""
        try:
            if self.suffix == ".parquet":
                footers = [self._parquet(file) for file in self.files]
                schema, file_rows = footers[0].schema_arrow, tuple(f.metadata.num_rows for f in footers)
                has_rows = sum(file_rows) > 0
            else:
                reader, file_rows = self._reader(), None
                schema = reader.schema
                has_rows = any(batch.num_rows for batch in reader)  # stops at the first rows
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise self._unreadable(exc) from None
        if not has_rows:
            raise LabelwiseError(f"{self.location} has no rows")
        return replace(self, schema=schema, file_rows=file_rows)

    @property
    def known_schema(self) -> pa.Schema:
        """The schema ``open`` learned."""
        if self.schema is None:
            raise LabelwiseError("a TableSource is made by TableSource.open")
        return self.schema

    @property
    def columns(self) -> list[str]:
        return list(self.known_schema.names)

    @property
    def kind(self) -> str:
        return FORMATS[self.suffix]

    @functools.cached_property
    def filesystem(self) -> pafs.FileSystem:
        return filesystem_for(self.location)[0]

    def fingerprint(self) -> list[dict[str, Any]]:
        """Each file's path, size and modification time: a resumed job must read the same input."""
        infos = self.filesystem.get_file_info(list(self.files))
        return [
            {"path": i.path, "size": i.size, "mtime": i.mtime.isoformat() if i.mtime else None} for i in infos
        ]

    def num_rows(self) -> int | None:
        """Rows in the table where its metadata says so (Parquet), else None."""
        return None if self.file_rows is None else sum(self.file_rows)

    def parts(self, rows: int) -> Iterator[pa.Table]:
        """The table in parts of exactly ``rows`` rows (the last one shorter), in order."""
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        count = 0
        for batch in self._batches():
            while batch.num_rows:
                take = min(rows - count, batch.num_rows)
                pending.append(batch.slice(0, take))
                count += take
                batch = batch.slice(take)
                if count == rows:
                    yield pa.Table.from_batches(pending, self.known_schema)
                    pending, count = [], 0
        if count:
            yield pa.Table.from_batches(pending, self.known_schema)

    def read_rows(self, start: int, stop: int) -> pa.Table:
        """Rows ``[start, stop)`` of a Parquet table, opening only the files and reading only the
        row groups that hold them."""
        import pyarrow as pa

        if self.file_rows is None:
            raise LabelwiseError(f"{self.location}: only Parquet is read by row ranges")
        pieces, offset = [], 0
        for file, rows in zip(self.files, self.file_rows, strict=True):
            if offset + rows > start and offset < stop:
                parquet = self._parquet(file)
                for group in range(parquet.metadata.num_row_groups):
                    size = parquet.metadata.row_group(group).num_rows
                    if offset + size > start and offset < stop:
                        low, high = max(start - offset, 0), min(stop - offset, size)
                        pieces.append(parquet.read_row_group(group).slice(low, high - low))
                    offset += size
            else:
                offset += rows
            if offset >= stop:
                break
        return pa.concat_tables(pieces) if pieces else self.known_schema.empty_table()

    # -- reading -----------------------------------------------------------------------------

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            if self.suffix == ".parquet":
                for file in self.files:
                    yield from self._parquet(file).iter_batches(batch_size=65_536)
            else:
                yield from self._reader()
        except (OSError, ValueError) as exc:
            raise self._unreadable(exc) from None

    def _parquet(self, file: str) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.filesystem.open_input_file(file))

    def _reader(self) -> Any:
        """A streaming reader of the CSV or JSON Lines file; CSV columns typed as text."""
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.json as pjson

        def stream() -> Any:
            return self.filesystem.open_input_stream(self.files[0], compression="detect")

        if self.suffix == ".jsonl":
            return pjson.open_json(stream(), read_options=pjson.ReadOptions(block_size=READ_BLOCK_BYTES))
        read = pcsv.ReadOptions(block_size=READ_BLOCK_BYTES)
        # The header's names are known once the schema is: only the first open reads them apart.
        names = (
            self.schema.names
            if self.schema is not None
            else pcsv.open_csv(stream(), read_options=read).schema.names
        )
        as_text = pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
        return pcsv.open_csv(stream(), read_options=read, convert_options=as_text)

    def _unreadable(self, exc: Exception) -> LabelwiseError:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "UTF8" in first or "UTF-8" in first:
            return self._not_utf8() or LabelwiseError(f"{self.location} is not UTF-8 text ({first})")
        return LabelwiseError(f"{self.location} is not readable as {self.kind}: {first}")

    def _not_utf8(self) -> LabelwiseError | None:
        """The error naming the first byte that is not UTF-8 (found by reading up to it)."""
        import codecs

        decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
        with self.filesystem.open_input_stream(self.files[0], compression="detect") as stream:
            while chunk := stream.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    return not_utf8(self.location, chunk[exc.start], offset + exc.start)
                offset += len(chunk)
        return None
