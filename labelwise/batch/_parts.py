"""A job's output as Parquet parts in one directory, written as they are scored.

``part-00000.parquet``, ``part-00001.parquet``... each hold ``rows_per_part`` input rows in input
order with the output columns added, and carry their own summary in the file's metadata. A part
is written to a hidden file and renamed into place, so it is there whole or not at all; that is
what makes a killed job resume by part: the same command scores only the parts that are missing
(or that held failed rows). ``_job.json`` says what the parts were scored from, so a resume with
another input, classifier or part size is refused; ``_manifest.json`` lists the parts once all
are there. Readers of Parquet datasets (pyarrow, pandas, Ray, Spark, DuckDB) skip names that
start with ``_`` or ``.``, so the directory reads as one table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ..core import LabelwiseError
from ._score import ScoreSummary
from ._sources import filesystem_for, table_format

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = ["PartsDir", "assemble", "part_name", "write_whole"]

JOB_FILE = "_job.json"
MANIFEST_FILE = "_manifest.json"
SUMMARY_KEY = b"labelwise.part"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


@contextmanager
def write_whole(filesystem: pafs.FileSystem, path: str) -> Iterator[Any]:
    """A stream to ``path`` that is there whole or not at all: a hidden file, renamed at the end."""
    where = PurePosixPath(path)
    partial = str(where.with_name(f".{where.name}.partial"))
    with filesystem.open_output_stream(partial) as stream:
        yield stream
    filesystem.move(partial, path)


class PartsDir:
    """The directory of a job's parts (a local path or a URL); every node of a cluster writes here."""

    def __init__(self, location: str) -> None:
        self.location = location
        filesystem, path = filesystem_for(location)
        self.filesystem: pafs.FileSystem = filesystem
        self.path = path

    def join(self, name: str) -> str:
        """The path of ``name`` in the directory, on its filesystem."""
        return str(PurePosixPath(self.path) / name)

    def start(self, job: Mapping[str, Any]) -> None:
        """Make the directory, or check that the parts already in it are this job's."""
        import pyarrow.fs as pafs

        info = self.filesystem.get_file_info(self.path)
        if info.type == pafs.FileType.File:
            raise LabelwiseError(
                f"--out {self.location} is a file; give a directory, or a name ending .parquet"
            )
        recorded = self._read_json(JOB_FILE)
        if recorded is None:
            if info.type == pafs.FileType.Directory and self.done():
                raise LabelwiseError(
                    f"--out {self.location} holds parts of an unknown job; choose another --out"
                )
            self.filesystem.create_dir(self.path, recursive=True)
            self._write_json(JOB_FILE, job)
        elif recorded != json.loads(json.dumps(job)):
            changed = sorted(k for k in {*recorded, *job} if recorded.get(k) != job.get(k))
            raise LabelwiseError(
                f"--out {self.location} holds parts of another job (its {', '.join(changed)} differ): "
                "choose another --out, or delete it to start again"
            )

    def done(self) -> dict[int, ScoreSummary]:
        """The parts written so far, by index, with the summaries they carry."""
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        found = {}
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        for info in self.filesystem.get_file_info(selector):
            name = PurePosixPath(info.path).name
            if not (name.startswith("part-") and name.endswith(".parquet")):
                continue
            metadata = pq.read_schema(self.filesystem.open_input_file(info.path)).metadata or {}
            if SUMMARY_KEY in metadata:
                found[int(name[5:-8])] = ScoreSummary(**json.loads(metadata[SUMMARY_KEY]))
        return found

    def write(self, index: int, table: pa.Table, summary: ScoreSummary) -> None:
        """Write part ``index`` whole, or not at all."""
        import pyarrow.parquet as pq

        meta = {**(table.schema.metadata or {}), SUMMARY_KEY: json.dumps(asdict(summary)).encode()}
        with write_whole(self.filesystem, self.join(part_name(index))) as stream:
            pq.write_table(table.replace_schema_metadata(meta), stream)

    def finish(self, parts: Mapping[int, ScoreSummary], total: ScoreSummary) -> None:
        """Write the manifest: the parts in order, their rows, and the job's totals."""
        manifest = {
            "format": "labelwise-parts/1",
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "parts": [
                {"file": part_name(i), "rows": s.rows, "failed_rows": s.failed_rows}
                for i, s in sorted(parts.items())
            ],
            "summary": asdict(total),
        }
        self._write_json(MANIFEST_FILE, manifest)

    def remove(self) -> None:
        self.filesystem.delete_dir(self.path)

    def _read_json(self, name: str) -> dict[str, Any] | None:
        try:
            with self.filesystem.open_input_stream(self.join(name)) as stream:
                return json.loads(stream.read())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def _write_json(self, name: str, value: Any) -> None:
        with write_whole(self.filesystem, self.join(name)) as stream:
            stream.write(json.dumps(value, indent=1).encode())


def assemble(parts: PartsDir, indexes: Iterable[int], out: str) -> None:
    """Write the parts ``indexes`` (in order) as the one table ``out`` (by suffix), part by part."""
    import pyarrow.parquet as pq

    suffix = table_format(out)
    filesystem, path = filesystem_for(out)
    writer = None
    with write_whole(filesystem, path) as stream:
        for number, index in enumerate(indexes):
            table = pq.read_table(parts.filesystem.open_input_file(parts.join(part_name(index))))
            table = table.replace_schema_metadata(None)
            if suffix == ".parquet":
                writer = writer or pq.ParquetWriter(stream, table.schema)
                writer.write_table(table)
            elif suffix == ".csv":
                stream.write(table.to_pandas().to_csv(index=False, header=number == 0).encode())
            else:
                stream.write(
                    table.to_pandas().to_json(orient="records", lines=True, force_ascii=False).encode()
                )
        if writer is not None:
            writer.close()
