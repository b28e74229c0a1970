"""Reading inputs and writing outputs: JSONL/Parquet records in, sharded Parquet and JSONL out.

Inputs are matched by glob (local paths or any Beam filesystem, e.g. ``gs://``); each file is
read by one worker, streaming, then the records are reshuffled so that later steps run in
parallel. Split a single very large input into several files to parallelise the reading too.
JSONL files may be compressed (``.gz``, ``.bz2``, ... by extension); ``*.parquet`` files are read
as Parquet (``--input_format`` overrides the choice by extension).
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.schema import (
    DROPPED_AUDIT_PREFIX,
    PAIR_SCHEMA,
    PAIRS_PREFIX,
    REJECTED_PREFIX,
    SHARD_TEMPLATE,
    SUMMARY_FILE,
    dead_letter,
    too_large_detail,
)

NAMESPACE = "simpairs"
REJECTED = "rejected"
DATA_DIR = Path(__file__).resolve().parent / "data"
FORMATS = ("auto", "jsonl", "parquet")
CODECS = ("zstd", "snappy")
PROGRESS_SECONDS = 10.0
_BOM = b"\xef\xbb\xbf"
_EXCERPT_BYTES = 4000
_LOG = logging.getLogger(__name__)


def bundled_sample(name: str) -> str:
    """Path of a real sample shipped in ``pipelines/data`` (see ``pipelines/data/SOURCES.md``)."""
    return str(DATA_DIR / name)


def input_format(path: str, requested: str = "auto") -> str:
    """``'parquet'`` or ``'jsonl'``: ``requested`` unless it is ``'auto'``, then by extension."""
    if requested != "auto":
        return requested
    return "parquet" if path.lower().endswith(".parquet") else "jsonl"


def iter_lines(
    f: BinaryIO, limit: int, chunk_size: int = 1 << 20
) -> Iterator[tuple[int, bytes, int, bool]]:
    """Yield ``(line_no, line, size, too_large)`` for each ``\\n``-terminated line of ``f``.

    ``line`` lacks its ``\\n`` and a trailing ``\\r``; ``size`` is its length in bytes. A line
    longer than ``limit`` bytes is not kept: ``too_large`` is True and ``line`` holds only its
    first bytes, so memory stays O(limit + chunk_size) whatever the input. A final line without
    ``\\n`` counts; an empty file has no lines.
    """
    line_no, size, parts, over = 0, 0, [], False
    while chunk := f.read(chunk_size):
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline < 0 else newline
            if not over:
                parts.append(chunk[start:end])
                if size + end - start > limit:
                    over = True
                    parts = [b"".join(parts)[:_EXCERPT_BYTES]]
            size += end - start
            if newline < 0:
                break
            line_no += 1
            yield _finish_line(line_no, parts, size, over)
            size, parts, over = 0, [], False
            start = newline + 1
    if size or parts and parts != [b""]:
        yield _finish_line(line_no + 1, parts, size, over)


def _finish_line(line_no: int, parts: list[bytes], size: int, over: bool):
    line = b"".join(parts)
    if line_no == 1 and line.startswith(_BOM):
        line, size = line[len(_BOM):], size - len(_BOM)
    if not over and line.endswith(b"\r"):
        line, size = line[:-1], size - 1
    return line_no, line, size, over


def iter_parquet_rows(f: BinaryIO, batch_size: int = 512) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_no, row)`` (1-based) from a Parquet file, one record batch in memory."""
    row_no = 0
    for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row


class Progress:
    """Logs what one worker has done so far, at most once every ``PROGRESS_SECONDS``.

    Create it in ``DoFn.setup`` (one per worker thread); ``tick`` costs a clock read.
    """

    def __init__(self, what: str, seconds: float = PROGRESS_SECONDS):
        self.what, self.seconds = what, seconds
        self.count, self.last = 0, time.monotonic()

    def tick(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self.last = now
            _LOG.info("%s: %d so far on this worker", self.what, self.count)


class _ReadFileRecords(beam.DoFn):
    """ReadableFile → ``(source, line_no, payload)`` with payload bytes (JSONL) or dict (Parquet).

    Over-long lines and files that break off (corrupt gzip, bad Parquet) become dead letters on
    the ``REJECTED`` output; each counts as one record read, so read = accepted + rejected.
    """

    def __init__(self, max_record_bytes: int, requested_format: str):
        self.max_record_bytes = max_record_bytes
        self.requested_format = requested_format
        self.records_read = Metrics.counter(NAMESPACE, "records_read")
        self.too_large = Metrics.counter(NAMESPACE, "rejected_too_large")
        self.unreadable = Metrics.counter(NAMESPACE, "rejected_unreadable_file")

    def setup(self):
        self.progress = Progress("records read")

    def process(self, readable_file: fileio.ReadableFile):
        path = readable_file.metadata.path
        count = 0
        try:
            for line_no, payload, size, too_large in self._records(readable_file, path):
                count += 1
                self.records_read.inc()
                self.progress.tick()
                if too_large:
                    self.too_large.inc()
                    detail = too_large_detail(size, self.max_record_bytes)
                    yield beam.pvalue.TaggedOutput(
                        REJECTED, dead_letter(path, line_no, "too_large", detail, payload, size)
                    )
                else:
                    yield path, line_no, payload
        except (OSError, EOFError, ValueError, zlib.error, pa.ArrowException) as err:
            self.records_read.inc()
            self.unreadable.inc()
            detail = f"{type(err).__name__}: {err} (after {count} records)"
            yield beam.pvalue.TaggedOutput(
                REJECTED, dead_letter(path, None, "unreadable_file", detail, "", 0)
            )
        _LOG.info("read %d records from %s", count, path)

    def _records(self, readable_file: fileio.ReadableFile, path: str):
        if input_format(path, self.requested_format) == "parquet":
            with readable_file.open(compression_type=CompressionTypes.UNCOMPRESSED) as f:
                for row_no, row in iter_parquet_rows(f):
                    yield row_no, row, 0, False
        else:
            with readable_file.open() as f:
                yield from iter_lines(f, self.max_record_bytes)


class ReadRecords(beam.PTransform):
    """Glob → raw records ``(source, line_no, payload)``, plus a ``rejected`` dead-letter output.

    Returns a ``DoOutputsTuple``: ``result[None]`` raw records (reshuffled), ``result.rejected``.
    """

    def __init__(self, pattern: str, max_record_bytes: int, requested_format: str = "auto"):
        super().__init__()
        self.pattern = pattern
        self.max_record_bytes = max_record_bytes
        self.requested_format = requested_format

    def expand(self, pbegin):
        records = (
            pbegin
            | "MatchInput" >> fileio.MatchFiles(self.pattern)
            | "OpenInput" >> fileio.ReadMatches()
            | "ReadFiles"
            >> beam.ParDo(
                _ReadFileRecords(self.max_record_bytes, self.requested_format)
            ).with_outputs(REJECTED, main="records")
        )
        return records.records | "FanOutRecords" >> beam.Reshuffle(), records.rejected


ROWS_PER_GROUP = 1000
"""Rows per Parquet row group of the pair shards (also the unit dealt to shards)."""


def shard_prefix(output_dir: str, name: str) -> str:
    """``output_dir/name`` for local and remote (``gs://``) folders, without touching either."""
    return f"{output_dir.rstrip('/')}/{name}"


class WritePairs(beam.PTransform):
    """Pair rows (dicts with ``PAIR_SCHEMA`` columns) → ``DIR/pairs-SSSSS-of-NNNNN.parquet``.

    ``num_shards=0`` lets the runner choose. Shards may be empty (zero rows, schema intact).
    Rows are converted to Arrow in batches of ``ROWS_PER_GROUP`` that become the files' row
    groups and are dealt to the shards one batch at a time; with Beam's default buffer (64 MB
    per table) a whole bundle, i.e. often the whole output, would land in one shard.
    """

    def __init__(self, output_dir: str, num_shards: int, codec: str = "zstd",
                 prefix: str = PAIRS_PREFIX, schema: pa.Schema = PAIR_SCHEMA):
        super().__init__()
        if codec not in CODECS:
            raise ValueError(f"--codec must be one of {CODECS}, got {codec!r}")
        self.output_dir, self.num_shards, self.codec = output_dir, num_shards, codec
        self.prefix, self.schema = prefix, schema

    def expand(self, rows):
        return rows | "WriteParquet" >> beam.io.WriteToParquet(
            shard_prefix(self.output_dir, self.prefix),
            self.schema,
            codec=self.codec,
            file_name_suffix=".parquet",
            num_shards=self.num_shards,
            shard_name_template=SHARD_TEMPLATE,
            row_group_buffer_size=1,
            record_batch_size=ROWS_PER_GROUP,
        )


class WriteDeadLetters(beam.PTransform):
    """Dead-letter dicts → ``DIR/rejected-SSSSS-of-NNNNN.jsonl`` (UTF-8 JSON, one a line)."""

    def __init__(self, output_dir: str, num_shards: int = 1):
        super().__init__()
        self.output_dir, self.num_shards = output_dir, num_shards

    def expand(self, dead_letters):
        return (
            dead_letters
            | "EncodeDeadLetters" >> beam.Map(json.dumps, ensure_ascii=False)
            | "WriteDeadLetterLines"
            >> beam.io.WriteToText(
                shard_prefix(self.output_dir, REJECTED_PREFIX),
                file_name_suffix=".jsonl",
                num_shards=self.num_shards,
                shard_name_template=SHARD_TEMPLATE,
            )
        )


def output_patterns(output_dir: str) -> list[str]:
    """Globs of every file a pair pipeline writes into ``output_dir``."""
    return [
        shard_prefix(output_dir, f"{PAIRS_PREFIX}-*-of-*.parquet"),
        shard_prefix(output_dir, f"{REJECTED_PREFIX}-*-of-*.jsonl"),
        shard_prefix(output_dir, SUMMARY_FILE),
        shard_prefix(output_dir, f"{DROPPED_AUDIT_PREFIX}-*.jsonl"),
    ]


def matching_files(pattern: str) -> list[str]:
    """Sorted paths matching ``pattern`` (empty list when none)."""
    found = FileSystems.match([pattern])[0].metadata_list
    return sorted(meta.path for meta in found)


def clear_outputs(output_dir: str, patterns: Iterable[str]) -> list[str]:
    """Delete files of an earlier run (only those matching ``patterns``); return their paths.

    Stale shards of a run with another ``--num_shards`` would otherwise mix into the new output.
    """
    stale = [path for pattern in patterns for path in matching_files(pattern)]
    if stale:
        FileSystems.delete(stale)
    return stale


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON to ``path`` (any Beam filesystem)."""
    data = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
    with FileSystems.create(path) as f:
        f.write(data)


def read_json(path: str) -> Any:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode())


def read_jsonl(pattern: str) -> list[dict[str, Any]]:
    """All records of the JSONL files matching ``pattern`` (e.g. the dead letters)."""
    records = []
    for path in matching_files(pattern):
        with FileSystems.open(path) as f:
            records.extend(json.loads(line) for line in f.read().decode().splitlines() if line)
    return records


def read_parquet_shards(pattern: str, schema: pa.Schema = PAIR_SCHEMA) -> pa.Table:
    """Concatenate the Parquet shards matching ``pattern``; empty shards are fine.

    A shard with zero rows (or zero bytes) adds nothing; no shard at all gives an empty table.
    Every shard must carry ``schema``'s columns and types.
    """
    tables = [pa.Table.from_pylist([], schema=schema)]
    for path in matching_files(pattern):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data = f.read()
        if data:
            tables.append(pq.read_table(pa.BufferReader(data)).select(schema.names).cast(schema))
    return pa.concat_tables(tables)


def read_pairs(output_dir: str) -> pa.Table:
    """All pair rows a pipeline wrote into ``output_dir`` (``PAIR_SCHEMA``)."""
    return read_parquet_shards(shard_prefix(output_dir, f"{PAIRS_PREFIX}-*-of-*.parquet"))
