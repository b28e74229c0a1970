"""Balancing, shuffling and sharding pair rows into the training corpus (``build_corpus``).

Method (every choice is a seeded content hash, ``pipelines.hashing``; no RNG, no order):

1. Row counts come from the Parquet footers of the inputs: Q question rows, G general rows.
2. Targets, with r = ``--ratio`` (question rows per general row)::

       downsample:  Q > r·G → q = round(r·G), g = G       else g = round(Q / r), q = Q
       cycle:       Q < r·G → q = round(r·G), g = G       else g = round(Q / r), q = Q

   so q = round(r·g) or g = round(q / r) (Python round, half to even): the ratio is exact up
   to one row.
3. A side with n rows and target k gives every row ``k // n`` copies, plus one more to the
   ``k % n`` rows with the smallest ``content_hash(seed, "select", row)`` (ties by content).
   ``downsample`` (k ≤ n) therefore keeps exactly the k smallest-hash rows of the larger side,
   each once; ``cycle`` (k ≥ n) repeats the whole smaller side ``k // n`` times and its first
   ``k % n`` rows in hash order once more — the reference trainer cycling its iterator.
   The k smallest are found exactly without sorting all rows: rows are counted per hash bucket
   (the top bits of the hash), the bucket holding the k-th row is found from the counts, rows
   below it are taken, and only that bucket (about 1,000 rows) is sorted.
4. Each output row (a row and its copy number c) gets ``o = content_hash(seed, "order", row,
   c)``. With ``--valid_fraction F`` a row goes to ``valid`` when
   ``unit_hash(seed, "valid", scheme, group_id) < F`` — a whole group goes one way, so no pair
   of a validation group (nor a copy of a validation row) is trained on. Copy c goes to shard
   ``(o_0 + c) mod N`` of its split (N = ``--num_shards``, or ``--num_valid_shards`` for
   valid; o_0 the hash of copy 0, so a row's copies are dealt round the shards) and rows
   inside a shard are sorted by ``o``: a seeded global shuffle. Shards hold about equal
   numbers of rows. Copies are made only in the shard writer, which holds the distinct rows
   it was given plus ~24 bytes per output row and writes 65,536 rows at a time, so memory
   does not grow with the copies (``--mode cycle`` at a small ``--ratio``); ``build_corpus
   --max_rows`` refuses a plan above its limit.

Outputs: ``train-SSSSS-of-NNNNN.parquet`` (+ ``valid-...``) with ``schema.PAIR_SCHEMA`` and
``_manifest.json`` (see ``manifest``).
"""

from __future__ import annotations

import hashlib
import io
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms import combiners

from pipelines.hashing import HASH_BITS, content_digest, content_hash, content_hashes, unit_hash
from pipelines.io import row_parts, shard_path, shard_prefix, write_json
from pipelines.schema import PAIR_COLUMNS, PAIR_SCHEMA
from pipelines.transforms import counter

QUESTION, GENERAL = "question", "general"
SIDES = (QUESTION, GENERAL)
MODES = ("downsample", "cycle")
TRAIN, VALID = "train", "valid"
MANIFEST_FILE = "_manifest.json"
MANIFEST_FORMAT = "simpairs.corpus/1"
EDGE = "edge"
EDGE_ROWS = 1024
SHARD_ROWS_PER_GROUP = 1 << 16
"""Rows per row group of a corpus shard: one ``take`` from the shard's distinct rows."""


def balance_targets(question_rows: int, general_rows: int, ratio: float, mode: str) -> dict:
    """Output rows per side, ``{"question": q, "general": g}`` (step 2 of the module docstring).

    Raises ``ValueError`` when a side is empty or ``ratio``/``mode`` is invalid.
    """
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {MODES}, got {mode!r}")
    if not ratio > 0 or math.isinf(ratio):
        raise ValueError(f"--ratio must be a positive number, got {ratio}")
    for side, rows in ((QUESTION, question_rows), (GENERAL, general_rows)):
        if rows <= 0:
            raise ValueError(f"--{side}: the inputs hold no pair rows, nothing to balance")
    reduce_question = question_rows > ratio * general_rows
    grow_question = question_rows < ratio * general_rows
    if reduce_question if mode == "downsample" else grow_question:
        return {QUESTION: round(ratio * general_rows), GENERAL: general_rows}
    return {QUESTION: question_rows, GENERAL: round(question_rows / ratio)}


def bucket_bits(rows: int) -> int:
    """Hash-bucket bits so that a bucket holds about ``EDGE_ROWS`` rows (0..20)."""
    return max(0, min(20, math.ceil(math.log2(max(1, rows / EDGE_ROWS)))))


def find_cut(bucket_counts: list[tuple[int, int]], m: int) -> tuple[int, int]:
    """``(edge bucket, rows needed from it)`` so that the rows of the buckets below plus the
    first ``need`` rows of the edge bucket are the ``m`` smallest (1 <= m < total)."""
    below = 0
    for bucket, count in sorted(bucket_counts):
        if below + count >= m:
            return bucket, m - below
        below += count
    raise ValueError(f"cannot take {m} rows out of {below}")


class _RouteByBucket(beam.DoFn):
    """(key, row) → (True/False, row) when its bucket is below/above the edge; edge rows go on."""

    def __init__(self, shift: int):
        self.shift = shift

    def process(self, keyed, cut):
        edge, _ = cut
        bucket = keyed[0][0] >> self.shift
        if bucket == edge:
            yield beam.pvalue.TaggedOutput(EDGE, keyed)
        else:
            yield bucket < edge, keyed[1]


def _flag_all(keyed: tuple, flag: bool) -> tuple[bool, dict]:
    return flag, keyed[1]


def _mark_edge(edge_rows: list, cut: tuple[int, int]) -> Iterator[tuple[bool, dict]]:
    need = cut[1]
    for rank, (_, row) in enumerate(sorted(edge_rows, key=lambda keyed: keyed[0])):
        yield rank < need, row


class MarkSmallest(beam.PTransform):
    """``(key, row)`` → ``(flag, row)`` with ``flag`` True for exactly the ``m`` rows with the
    smallest keys (``key[0]`` a 63-bit ``content_hash``; the rest of the key breaks ties).
    ``n`` is the number of input rows. Exact and scalable: step 3 of the module docstring."""

    def __init__(self, m: int, n: int):
        super().__init__()
        self.m, self.n = m, n

    def expand(self, keyed):
        if self.m <= 0 or self.m >= self.n:
            return keyed | "Same" >> beam.Map(_flag_all, self.m >= self.n)
        shift = HASH_BITS - bucket_bits(self.n)
        cut = (
            keyed
            | "Bucket" >> beam.Map(lambda keyed_row: keyed_row[0][0] >> shift)
            | "CountBuckets" >> combiners.Count.PerElement()
            | "AllCounts" >> combiners.ToList()
            | "FindCut" >> beam.Map(find_cut, self.m)
        )
        routed = keyed | "Route" >> beam.ParDo(
            _RouteByBucket(shift), beam.pvalue.AsSingleton(cut)
        ).with_outputs(EDGE, main="decided")
        edge = (
            routed[EDGE]
            | "EdgeRows" >> combiners.ToList()
            | "SortEdge" >> beam.FlatMap(_mark_edge, beam.pvalue.AsSingleton(cut))
        )
        return (routed.decided, edge) | "Marked" >> beam.Flatten()


def _selection_key(row: dict[str, Any], seed: int):
    parts = row_parts(row)
    return (content_hash(seed, "select", *parts), *parts), row


def _copies(marked: tuple[bool, dict], base: int, side: str) -> Iterator[tuple[int, dict]]:
    flag, row = marked
    total = base + flag
    counter(f"corpus_rows_out_{side}").inc(total)
    if total:
        yield total, row


class BalanceSide(beam.PTransform):
    """Rows of one side (n of them) → ``(copies, row)`` for exactly ``k`` output rows in all
    (step 3); rows with no copy are left out. The copies are made only when the shard is
    written, so no step holds the k output rows."""

    def __init__(self, side: str, n: int, k: int, seed: int):
        super().__init__()
        self.side, self.n, self.k, self.seed = side, n, k, seed

    def expand(self, rows):
        return (
            rows
            | "SelectionKey" >> beam.Map(_selection_key, self.seed)
            | "MarkExtra" >> MarkSmallest(self.k % self.n, self.n)
            | "Copies" >> beam.FlatMap(_copies, self.k // self.n, self.side)
        )


@dataclass(frozen=True)
class Layout:
    """Where rows go: seed, validation fraction, shard counts and the output folder."""

    output: str
    seed: int
    valid_fraction: float
    num_shards: int
    num_valid_shards: int
    codec: str

    def shards(self) -> dict[str, int]:
        """Split name → number of shards (``valid`` only with a validation fraction)."""
        return {TRAIN: self.num_shards, **({VALID: self.num_valid_shards}
                                          if self.valid_fraction > 0 else {})}

    def path(self, split: str, shard: int) -> str:
        return shard_path(self.output, split, shard, self.shards()[split])

    def place(self, copies_row: tuple[int, dict]) -> Iterator[tuple[tuple[str, int], tuple]]:
        """``((split, shard), (row, first, copies))`` for each shard that gets copies of the
        row (step 4): copy c goes to shard ``(o_0 + c) mod N``, so that shard writes copies
        ``first, first + N, ... < copies``."""
        copies, row = copies_row
        in_valid = self.valid_fraction > 0 and (
            unit_hash(self.seed, "valid", row["scheme"], row["group_id"]) < self.valid_fraction)
        split = VALID if in_valid else TRAIN
        shards = self.shards()[split]
        [order] = self.orders(row_parts(row), [0])
        for first in range(min(copies, shards)):
            yield (split, (order + first) % shards), (row, first, copies)

    def orders(self, parts: tuple[str, ...], copies: Iterable[int]) -> Iterator[int]:
        """``o_c = content_hash(seed, "order", row, c)`` for each copy ``c``: where it sorts."""
        return content_hashes(self.seed, ("order", *parts), map(str, copies))


class _WriteShard(beam.DoFn):
    """``((split, shard), [(row, first, copies), ...])`` → one Parquet file, the copies sorted
    by order hash (ties by content), written ``SHARD_ROWS_PER_GROUP`` rows at a time (taken
    from an Arrow table of the distinct rows); yields stats. Memory: the distinct rows given
    plus ~24 bytes per output row while sorting (order, row index, argsort) and one row group
    (10,000,200 rows into one shard: 231 MiB tracemalloc peak)."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def process(self, element):
        (split, shard), values = element
        given = sorted(((row_parts(v[0]), v) for v in values if v is not None),
                       key=lambda parts_value: parts_value[0])
        owner = self.copies_in_order(given, self.layout.shards()[split])
        distinct = pa.Table.from_pylist([value[0] for _, value in given], schema=PAIR_SCHEMA)
        row_digests = [content_digest(0, *parts) for parts, _ in given]
        digest = hashlib.blake2b(digest_size=32)
        path = self.layout.path(split, shard)
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f, \
                pq.ParquetWriter(f, PAIR_SCHEMA, compression=self.layout.codec) as writer:
            for start in range(0, len(owner), SHARD_ROWS_PER_GROUP):
                chunk = owner[start:start + SHARD_ROWS_PER_GROUP]
                for k in chunk.tolist():
                    digest.update(row_digests[k])
                writer.write_table(distinct.take(chunk))
            if not len(owner):
                writer.write_table(distinct)
        counts = np.bincount(owner, minlength=len(given)).tolist()
        per_scheme = Counter()
        for (parts, _), count in zip(given, counts, strict=True):
            per_scheme[parts[2]] += count
        counter(f"corpus_rows_written_{split}").inc(len(owner))
        yield {
            "file": path.rsplit("/", 1)[-1],
            "split": split,
            "shard": shard,
            "rows": len(owner),
            "rows_per_scheme": dict(sorted(per_scheme.items())),
            "blake2b": digest.hexdigest(),
        }

    def copies_in_order(self, given: list[tuple[tuple[str, ...], tuple]], step: int):
        """For each output row in shard order, the index into ``given`` (sorted by content)
        of the row it copies: copies ``first, first + step, ... < copies`` of each row, sorted
        by ``Layout.orders`` (a stable sort: ties by content)."""
        orders, owners = array("Q"), array("I")
        for index, (parts, (_, first, copies)) in enumerate(given):
            copy_numbers = range(first, copies, step)
            orders.extend(self.layout.orders(parts, copy_numbers))
            owners.extend(repeat(index, len(copy_numbers)))
        owner = np.frombuffer(owners, dtype=np.uint32)
        return owner[np.argsort(np.frombuffer(orders, dtype=np.uint64), kind="stable")]


class ShuffleIntoShards(beam.PTransform):
    """``(copies, row)`` → sharded Parquet files (empty shards too) → one stats dict per file."""

    def __init__(self, layout: Layout):
        super().__init__()
        self.layout = layout

    def expand(self, copies):
        every_shard = [((split, shard), None) for split, count in self.layout.shards().items()
                       for shard in range(count)]
        placed = copies | "Place" >> beam.FlatMap(self.layout.place)
        empty = copies.pipeline | "EveryShard" >> beam.Create(every_shard)
        return (
            (placed, empty)
            | "JoinShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShard(self.layout))
        )


def manifest(static: dict[str, Any], shard_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``_manifest.json`` document: ``static`` (settings, inputs, targets, creation time)
    plus what was written: ``shards`` (file, split, shard, rows, rows_per_scheme, blake2b of
    its rows in file order), ``total_rows``, ``rows_per_split``, ``rows_per_scheme`` and
    ``content_hash`` = blake2b-256 over the shards in file-name order of (file, blake2b)."""
    shards = sorted(shard_stats, key=lambda s: s["file"])
    per_scheme: Counter = Counter()
    per_split: Counter = Counter()
    content = hashlib.blake2b(digest_size=32)
    for shard in shards:
        per_scheme.update(shard["rows_per_scheme"])
        per_split[shard["split"]] += shard["rows"]
        content.update(content_digest(0, shard["file"], shard["blake2b"]))
    return {
        **static,
        "total_rows": sum(s["rows"] for s in shards),
        "rows_per_split": dict(sorted(per_split.items())),
        "rows_per_scheme": dict(sorted(per_scheme.items())),
        "content_hash": content.hexdigest(),
        "shards": shards,
    }


def _write_manifest(shard_stats: list[dict[str, Any]], static: dict[str, Any], path: str):
    document = manifest(static, shard_stats)
    write_json(path, document)
    return document["total_rows"]


class WriteManifest(beam.PTransform):
    """Shard stats → ``DIR/_manifest.json`` (one file, written after every shard)."""

    def __init__(self, output: str, static: dict[str, Any]):
        super().__init__()
        self.output, self.static = output, static

    def expand(self, shard_stats):
        return (
            shard_stats
            | "AllShards" >> combiners.ToList()
            | "Manifest" >> beam.Map(_write_manifest, self.static,
                                     shard_prefix(self.output, MANIFEST_FILE))
        )


def _read_pair_file(path: str, side: str, batch_size: int = 4096) -> Iterator[dict[str, Any]]:
    """Rows of one pair Parquet file (``PAIR_SCHEMA`` columns, cast); empty files yield none.

    A null in any pair column (``build_corpus`` refuses such files before the run) fails the
    job with the file's name: dropping the row would silently break the balance planned from
    the row counts.
    """
    read = counter(f"corpus_rows_read_{side}")
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        if not f.seek(0, io.SEEK_END):
            return
        f.seek(0)
        for batch in pq.ParquetFile(f).iter_batches(
            batch_size=batch_size, columns=list(PAIR_COLUMNS)
        ):
            table = pa.Table.from_batches([batch]).cast(PAIR_SCHEMA)
            nulls = {name: table.column(name).null_count for name in PAIR_COLUMNS}
            if any(nulls.values()):
                raise ValueError(f"{path}: null values in pair columns {nulls}")
            rows = table.to_pylist()
            read.inc(len(rows))
            yield from rows


class ReadPairFiles(beam.PTransform):
    """Paths of pair Parquet files (already matched) → pair rows, files read in parallel."""

    def __init__(self, paths: list[str], side: str):
        super().__init__()
        self.paths, self.side = paths, side

    def expand(self, pbegin):
        return (
            pbegin
            | "Paths" >> beam.Create(self.paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadRows" >> beam.FlatMap(_read_pair_file, self.side)
        )
