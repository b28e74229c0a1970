"""Reading inputs and writing outputs: JSONL/Parquet records in, sharded Parquet and JSONL out.

Inputs are matched by glob (local paths or any Beam filesystem, e.g. ``gs://``); each file is
read by one worker, streaming, then the records are reshuffled so that later steps run in
parallel. Split a single very large input into several files to parallelise the reading too.
JSONL files may be compressed (``.gz``, ``.bz2``, ... by extension); ``*.parquet`` files are read
as Parquet (``--input_format`` overrides the choice by extension).
"""

from __future__ import annotations

import bz2
import io
import json
import logging
import lzma
import math
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from apache_beam.io import fileio
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.hashing import content_hash
from pipelines.schema import (
    DROPPED_AUDIT_PREFIX,
    PAIR_SCHEMA,
    PAIRS_PREFIX,
    REJECTED_PREFIX,
    SHARD_TEMPLATE,
    SUMMARY_FILE,
    Rejected,
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
T = TypeVar("T")


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


def iter_parquet_rows(
    f: BinaryIO, batch_size: int = 512
) -> Iterator[tuple[int, dict[str, Any] | Rejected]]:
    """Yield ``(row_no, row)`` (1-based) from a Parquet file, one record batch in memory.

    A bad row or row group costs only itself: a row holding a string that is not valid UTF-8
    comes as ``Rejected("invalid_utf8")`` in place of the row, one with another value Python
    cannot hold (a timestamp out of range) as ``Rejected("invalid_record")``; a row group
    that cannot be decoded comes as one ``Rejected("unreadable_rows")`` (numbered by its
    first unread row, the count in the detail), and the next row group is read.
    """
    parquet = pq.ParquetFile(f)
    row_no = 0
    for group in range(parquet.num_row_groups):
        end = row_no + parquet.metadata.row_group(group).num_rows
        try:
            for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[group]):
                for row in _batch_rows(batch):
                    row_no += 1
                    yield row_no, row
        except (OSError, pa.ArrowException) as err:
            detail = (f"row group {group}: rows {row_no + 1}-{end} ({end - row_no} rows) not "
                      f"read: {type(err).__name__}: {err}")
            yield row_no + 1, Rejected("unreadable_rows", detail)
            row_no = end


_ROW_ERRORS = (ValueError, OverflowError, pa.ArrowException)
"""What converting one Parquet row to Python may raise (bad UTF-8, a date out of range, ...)."""


def _batch_rows(batch: pa.RecordBatch) -> list[dict[str, Any] | Rejected]:
    try:
        return batch.to_pylist()
    except _ROW_ERRORS:
        return [_one_row(batch.slice(k, 1)) for k in range(batch.num_rows)]


def _one_row(batch: pa.RecordBatch) -> dict[str, Any] | Rejected:
    try:
        return batch.to_pylist()[0]
    except UnicodeDecodeError as err:
        return Rejected("invalid_utf8", f"a string value: {err.reason} at byte {err.start}")
    except _ROW_ERRORS as err:
        return Rejected("invalid_record", f"{type(err).__name__}: {err}")


_DECOMPRESSORS = {
    CompressionTypes.GZIP: lambda: zlib.decompressobj(zlib.MAX_WBITS | 16),
    CompressionTypes.DEFLATE: zlib.decompressobj,
    CompressionTypes.BZIP2: bz2.BZ2Decompressor,
    CompressionTypes.LZMA: lzma.LZMADecompressor,
    CompressionTypes.ZSTD: lambda: zstandard.ZstdDecompressor(
        max_window_size=1 << 31).decompressobj(),
}
"""Beam's compression type → a new streaming decompressor (each has ``eof`` and
``unused_data``); the same codecs and window limit as Beam's ``CompressedFile``."""
DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError)
_FEED_BYTES = 1 << 16
_ZSTD_FEED_BYTES = 1 << 8


class CheckedDecompression:
    """The decompressed bytes of ``raw`` (a binary stream), read with ``read(size)``.

    Unlike Beam's ``CompressedFile``, which returns EOF where the compressed stream breaks
    off, a stream that ends before its end-of-stream marker raises ``EOFError``, and corrupt
    data raises the codec's error (``DECOMPRESSION_ERRORS``); concatenated streams
    (multi-member gzip, bzip2) are read one after another. Memory is bounded: zlib, bzip2 and
    LZMA return at most ``size`` bytes per call (``max_length``); zstandard cannot, so it is
    fed ``_ZSTD_FEED_BYTES`` at a time (at most ~32,768 × that: 8 MiB of zeros).
    """

    def __init__(self, raw: BinaryIO, compression_type: str):
        self.raw = raw
        self.new_decompressor = _DECOMPRESSORS[compression_type]
        self.bounded = compression_type != CompressionTypes.ZSTD
        self.feed = _FEED_BYTES if self.bounded else _ZSTD_FEED_BYTES
        self.decompressor = self.new_decompressor()
        self.pending = b""
        self.started = False
        self.error: Exception | None = None

    def read(self, size: int) -> bytes:
        """Up to ``size`` (> 0) decompressed bytes, fewer only at the end; ``b""`` at the clean
        end."""
        if self.error is not None:
            raise self.error
        pieces, total = [], 0
        try:
            while total < size and (piece := self._decompress(size - total)):
                pieces.append(piece)
                total += len(piece)
        except DECOMPRESSION_ERRORS as err:
            if not pieces:
                raise
            self.error = err  # the bytes before the break first, the error on the next read
        return b"".join(pieces)

    def _decompress(self, size: int) -> bytes:
        out = b""
        while not out:
            if self.decompressor.eof:
                self.pending = self.decompressor.unused_data + self.pending
                self.pending = self.pending or self.raw.read(self.feed)
                if not self.pending:
                    return b""
                self.decompressor = self.new_decompressor()
            if not self.pending and getattr(self.decompressor, "needs_input", True):
                self.pending = self.raw.read(self.feed)
                if not self.pending:
                    if self.started:
                        raise EOFError("compressed stream ended before its end-of-stream marker")
                    return b""
            self.started = True
            if self.bounded:
                out = self.decompressor.decompress(self.pending, size)
                self.pending = getattr(self.decompressor, "unconsumed_tail", b"")
            else:
                out, self.pending = self.decompressor.decompress(self.pending), b""
        return out


def decompressed(raw: BinaryIO, path: str) -> BinaryIO | CheckedDecompression:
    """``raw`` (the file's bytes), decompressed by ``path``'s extension as Beam would
    (``CompressionTypes.detect_compression_type``) but checked (``CheckedDecompression``)."""
    kind = CompressionTypes.detect_compression_type(path)
    return raw if kind == CompressionTypes.UNCOMPRESSED else CheckedDecompression(raw, kind)


def source_name(path: str) -> str:
    """``path`` as valid UTF-8 text, for records and dead letters (``source``).

    A file name that is not UTF-8 reaches Python with its bad bytes as lone surrogates
    (``surrogateescape``), which Beam's coders cannot encode; they are written as ``\\xNN``.
    """
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


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

    Over-long lines and files that break off (a truncated or corrupt archive, bad Parquet)
    become dead letters on the ``REJECTED`` output, with the number of records read before;
    each counts as one record read, so read = accepted + rejected.
    """

    def __init__(self, max_record_bytes: int, requested_format: str):
        self.max_record_bytes = max_record_bytes
        self.requested_format = requested_format
        self.records_read = Metrics.counter(NAMESPACE, "records_read")
        self.unreadable = Metrics.counter(NAMESPACE, "rejected_unreadable_file")

    def setup(self):
        self.progress = Progress("records read")

    def process(self, readable_file: fileio.ReadableFile):
        path = readable_file.metadata.path
        source = source_name(path)
        count = 0
        try:
            for line_no, payload, size, rejected in self._records(readable_file, path):
                count += 1
                self.records_read.inc()
                self.progress.tick()
                if rejected is None:
                    yield source, line_no, payload
                    continue
                Metrics.counter(NAMESPACE, f"rejected_{rejected.reason}").inc()
                yield beam.pvalue.TaggedOutput(REJECTED, dead_letter(
                    source, line_no, rejected.reason, rejected.detail, payload, size))
        except (*DECOMPRESSION_ERRORS, ValueError, pa.ArrowException) as err:
            self.records_read.inc()
            self.unreadable.inc()
            detail = f"{type(err).__name__}: {err} (after {count} records)"
            yield beam.pvalue.TaggedOutput(
                REJECTED, dead_letter(source, None, "unreadable_file", detail, "", 0)
            )
        _LOG.info("read %d records from %s", count, path)

    def _records(self, readable_file: fileio.ReadableFile, path: str):
        """``(line_no, payload, size, Rejected or None)`` for each line or row of the file."""
        if input_format(path, self.requested_format) == "parquet":
            with readable_file.open(compression_type=CompressionTypes.UNCOMPRESSED) as f:
                for row_no, row in iter_parquet_rows(f):
                    if isinstance(row, Rejected):
                        yield row_no, "", 0, row
                    else:
                        yield row_no, row, 0, None
        else:
            with readable_file.open(compression_type=CompressionTypes.UNCOMPRESSED) as raw:
                lines = iter_lines(decompressed(raw, path), self.max_record_bytes)
                for line_no, line, size, too_large in lines:
                    detail = too_large_detail(size, self.max_record_bytes)
                    yield line_no, line, size, Rejected("too_large", detail) if too_large else None


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
"""Rows per Parquet row group of the pair shards."""
SHARD_ROWS = 100_000
"""With ``num_shards=0``: about this many rows per pair shard (at least one shard)."""
STAGING_DIR = "_staging"


class OutputError(ValueError):
    """An output folder that cannot be written; the message names it."""


def shard_prefix(output_dir: str, name: str) -> str:
    """``output_dir/name`` for local and remote (``gs://``) folders, without touching either."""
    return f"{output_dir.rstrip('/')}/{name}"


def shard_path(output_dir: str, prefix: str, shard: int, num_shards: int,
               suffix: str = ".parquet") -> str:
    """``output_dir/prefix-SSSSS-of-NNNNN.suffix`` (``SHARD_TEMPLATE``)."""
    name = SHARD_TEMPLATE.replace("SSSSS", f"{shard:05d}").replace("NNNNN", f"{num_shards:05d}")
    return shard_prefix(output_dir, f"{prefix}{name}{suffix}")


def row_parts(row: dict[str, Any]) -> tuple[str, ...]:
    """The content of a pair row as strings (score by ``repr`` of its float value)."""
    return (row["text_a"], row["text_b"], row["scheme"], row["group_id"],
            repr(float(row["score"])))


def write_parquet(path: str, rows: list[dict[str, Any]], schema: pa.Schema, codec: str) -> None:
    """``rows`` → one Parquet file at ``path`` (any Beam filesystem), row groups of
    ``ROWS_PER_GROUP`` rows; zero rows give a file with the schema and no row."""
    buffer = io.BytesIO()
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, buffer, compression=codec, row_group_size=ROWS_PER_GROUP)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(buffer.getvalue())


def _order_key(row: dict[str, Any]) -> tuple[int, tuple[str, ...], dict[str, Any]]:
    parts = row_parts(row)
    return content_hash(0, "shard", *parts), parts, row


def _shards_for(rows: int) -> int:
    return max(1, math.ceil(rows / SHARD_ROWS))


def _every_shard(num_shards: int) -> list[tuple[int, None]]:
    return [(shard, None) for shard in range(num_shards)]


class _WritePairShard(beam.DoFn):
    """``(shard, values)`` → one Parquet file, rows sorted by ``(order hash, content)``."""

    def __init__(self, output_dir: str, prefix: str, codec: str, schema: pa.Schema):
        self.output_dir, self.prefix, self.codec, self.schema = output_dir, prefix, codec, schema

    def process(self, element, num_shards: int):
        shard, values = element
        ordered = sorted((v for v in values if v is not None), key=lambda v: (v[0], v[1]))
        path = shard_path(self.output_dir, self.prefix, shard, num_shards)
        write_parquet(path, [row for _, _, row in ordered], self.schema, self.codec)
        yield path


class WritePairs(beam.PTransform):
    """Pair rows (dicts with ``PAIR_SCHEMA`` columns) → ``DIR/pairs-SSSSS-of-NNNNN.parquet``.

    Row r goes to shard ``content_hash(0, "shard", row) mod N`` and rows inside a shard are
    sorted by that hash (then content), so the same rows give byte-identical shards on every
    run and runner, and N shards hold about n/N rows each (binomial spread, ±√(n/N)) even
    when n is small. Every shard is written, empty ones with the schema and no row.
    ``num_shards=0``: N = ⌈n / ``SHARD_ROWS``⌉. One shard is held in memory when written.
    """

    def __init__(self, output_dir: str, num_shards: int, codec: str = "zstd",
                 prefix: str = PAIRS_PREFIX, schema: pa.Schema = PAIR_SCHEMA):
        super().__init__()
        if codec not in CODECS:
            raise ValueError(f"--codec must be one of {CODECS}, got {codec!r}")
        self.output_dir, self.num_shards, self.codec = output_dir, num_shards, codec
        self.prefix, self.schema = prefix, schema

    def expand(self, rows):
        keyed = rows | "OrderKey" >> beam.Map(_order_key)
        if self.num_shards:
            count = rows.pipeline | "NumShards" >> beam.Create([self.num_shards])
        else:
            count = (keyed | "CountRows" >> beam.combiners.Count.Globally()
                     | "NumShards" >> beam.Map(_shards_for))
        shards = beam.pvalue.AsSingleton(count)
        placed = keyed | "Deal" >> beam.Map(lambda v, n: (v[0] % n, v), shards)
        empty = count | "EveryShard" >> beam.FlatMap(_every_shard)
        return (
            (placed, empty)
            | "JoinShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(
                _WritePairShard(self.output_dir, self.prefix, self.codec, self.schema), shards)
        )


class WriteDeadLetters(beam.PTransform):
    """Dead-letter dicts → ``DIR/_rejected-SSSSS-of-NNNNN.jsonl`` (UTF-8 JSON, one a line)."""

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


def clear_outputs(output_dir: str, patterns: Iterable[str], keep: Iterable[str] = ()) -> list[str]:
    """Delete files of an earlier run (only those matching ``patterns``, except ``keep``);
    return their paths.

    Stale shards of a run with another ``--num_shards`` would otherwise mix into the new output.
    """
    kept = set(keep)
    stale = [path for pattern in patterns for path in matching_files(pattern)
             if path not in kept]
    if stale:
        FileSystems.delete(stale)
    return stale


def staging_dir(output_dir: str) -> str:
    """``output_dir/_staging``: where a run writes everything before it replaces the output.

    Its leading ``_`` makes pyarrow, Spark and ``*.parquet`` globs skip it, so a run that was
    killed leaves the earlier output readable as it was.
    """
    return shard_prefix(output_dir, STAGING_DIR)


def _remove_tree(folder: str) -> None:
    """Delete ``folder`` and all below it (local: ``rmtree``; object stores such as ``gs://``:
    every object under the ``folder/`` prefix)."""
    if FileSystems.get_scheme(folder) in (None, "file"):
        if FileSystems.exists(folder):
            FileSystems.delete([folder])
        return
    found = matching_files(shard_prefix(folder, "**"))
    if found:
        FileSystems.delete(found)


def _local_problem(output_dir: str) -> str | None:
    """Why a local ``output_dir`` cannot be a folder we write, or None (remote: None)."""
    if FileSystems.get_scheme(output_dir) not in (None, "file"):
        return None
    path = Path(output_dir.removeprefix("file://"))
    if path.exists() and not path.is_dir():
        return "it is an existing file, not a folder"
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        return f"{parent} is a file, not a folder"
    return None


def prepare_output(output_dir: str) -> str:
    """Check that ``output_dir`` can be written, before any input is read, and give a fresh,
    empty staging folder (``staging_dir``); return its path.

    Leftovers of an earlier run that was killed are removed from the staging folder; the
    output itself is not touched. Raises ``OutputError`` naming ``output_dir``.
    """
    stage = staging_dir(output_dir)
    problem = _local_problem(output_dir)
    if problem is None:
        probe = shard_prefix(stage, "_probe")
        try:
            _remove_tree(stage)
            FileSystems.mkdirs(stage)
            FileSystems.create(probe).close()
            FileSystems.delete([probe])
        except (OSError, BeamIOError) as err:
            problem = f"cannot write there ({type(err).__name__}: {err})"
    if problem is not None:
        raise OutputError(f"--output {output_dir}: {problem}")
    return stage


def promote_output(output_dir: str, patterns: Iterable[str]) -> list[str]:
    """Move every file of the staging folder into ``output_dir`` (same names, replacing older
    files), delete older files matching ``patterns`` that the new run did not write (shards
    of another ``--num_shards``), remove the staging folder; return the new paths, sorted.

    Call it only after the run succeeded: until then the earlier output is untouched. Side
    files written into ``staging_dir`` by any writer are promoted with the rest.
    """
    stage = staging_dir(output_dir)
    staged = [path for path in matching_files(shard_prefix(stage, "*"))
              if not path.rsplit("/", 1)[-1].startswith("beam-temp-")]
    final = [shard_prefix(output_dir, path.rsplit("/", 1)[-1]) for path in staged]
    if staged:
        FileSystems.rename(staged, final)
    clear_outputs(output_dir, patterns, keep=final)
    _remove_tree(stage)
    return sorted(final)


def discard_staging(output_dir: str) -> None:
    """Remove the staging folder of a failed run (best effort: the run's error matters more)."""
    try:
        _remove_tree(staging_dir(output_dir))
    except (OSError, BeamIOError) as err:
        _LOG.warning("could not remove %s: %s", staging_dir(output_dir), err)


def run_staged(output: str, patterns: list[str], what: str, run: Callable[[], T]) -> T:
    """``run()`` (which writes into ``staging_dir(output)``), then replace the files of an
    earlier run in ``output`` with the new ones (``promote_output``); return ``run()``'s
    value. A run that fails or is interrupted leaves the earlier output as it was, and says so.
    """
    try:
        value = run()
    except BaseException:
        discard_staging(output)
        _LOG.error("%s failed: the earlier output in %s is left as it was", what, output)
        raise
    promote_output(output, patterns)
    return value


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON to ``path`` (any Beam filesystem)."""
    data = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
    with FileSystems.create(path) as f:
        f.write(data)


def read_json(path: str) -> Any:
    """The JSON document at ``path``; ``ValueError`` naming ``path`` when it is not UTF-8
    JSON (a manifest or summary cut short or edited by hand)."""
    with FileSystems.open(path) as f:
        data = f.read()
    try:
        return json.loads(data.decode())
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


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
    Every shard must carry ``schema``'s columns and types; one that does not, or cannot be
    read, is a ``ValueError`` naming it.
    """
    tables = [pa.Table.from_pylist([], schema=schema)]
    for path in matching_files(pattern):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data = f.read()
        if not data:
            continue
        try:
            table = pq.read_table(pa.BufferReader(data)).select(schema.names).cast(schema)
        except (KeyError, pa.ArrowException) as err:
            problem = f"{type(err).__name__}: {err}"
            raise ValueError(f"{path}: not a readable shard ({problem})") from None
        tables.append(table)
    return pa.concat_tables(tables)


def read_pairs(output_dir: str) -> pa.Table:
    """All pair rows a pipeline wrote into ``output_dir`` (``PAIR_SCHEMA``), as one table of one
    chunk per column (so ``print`` shows rows, not one chunk per shard)."""
    pattern = shard_prefix(output_dir, f"{PAIRS_PREFIX}-*-of-*.parquet")
    return read_parquet_shards(pattern).combine_chunks()
