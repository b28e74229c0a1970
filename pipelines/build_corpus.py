"""Balanced training corpus: question pairs and general (QA + document) pairs at a fixed ratio.

    python -m pipelines.build_corpus [--question GLOB ...] [--general GLOB ...] [--output DIR]
                                     [--num_shards N] [--seed S] [--ratio 1.0]
                                     [--mode downsample|cycle] [--valid_fraction F]
                                     [--num_valid_shards N] [--weights qa=1,doc=0.5]
                                     [Beam options]

Each GLOB names pair Parquet files (``schema.PAIR_SCHEMA``) or a pair pipeline's output folder
(a path without ``*?[`` that does not end in ``.parquet`` means ``FOLDER/pairs-*.parquet``);
the ``_summary.json`` beside the files, where present, supplies thresholds and variant for the
manifest. ``--ratio`` is question rows per general row (the recipe: 1:1).

``downsample`` (default) keeps all rows of the smaller side and a seeded-hash subset of the
larger; ``cycle`` keeps all rows of the larger side and repeats the smaller one, as the
reference trainer does by cycling its iterators. Exact method: ``pipelines.corpus``.
``--weights SCHEME=W,...`` (each W in [0, 1]) down-weights schemes of the general side before
balancing: of the n_s general rows of scheme s exactly round(W·n_s) are kept, those with the
smallest seeded hash (the same selection as ``downsample``); unlisted schemes keep weight 1.
Use it for a scheme whose judged precision is low (docs/similarity.md).
Output: ``DIR/train-SSSSS-of-NNNNN.parquet`` (+ ``valid-...``) and ``DIR/_manifest.json``.
Without arguments: ``out/question`` + ``out/qa``, ``out/doc`` → ``out/corpus`` (run the pair
pipelines, or ``python -m pipelines.build_all``, first).
"""

from __future__ import annotations

import argparse
import datetime
import io
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineResult

import pipelines
from pipelines.corpus import (
    GENERAL,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    MODES,
    QUESTION,
    SIDES,
    TRAIN,
    VALID,
    BalanceSide,
    Layout,
    ReadPairFiles,
    ShuffleIntoShards,
    WriteManifest,
    balance_targets,
)
from pipelines.io import (
    CODECS,
    matching_files,
    prepare_output,
    read_json,
    run_staged,
    shard_prefix,
    staging_dir,
)
from pipelines.job import OptionError, configure_logging, main
from pipelines.options import (
    IOOptions,
    LogOptions,
    SamplingOptions,
    make_pipeline,
    parse_options,
    path_argument,
)
from pipelines.report import REPORT_FILE
from pipelines.schema import PAIR_SCHEMA, PAIR_SCHEMES, PAIRS_PREFIX, SUMMARY_FILE

DEFAULT_QUESTION = ["out/question"]
DEFAULT_GENERAL = ["out/qa", "out/doc"]
DEFAULT_OUTPUT = "out/corpus"
DEFAULT_MAX_ROWS = 50_000_000
"""``--max_rows``: the shard writers hold ~24 bytes per output row while sorting (~1.2 GB)."""
_LOG = logging.getLogger("pipelines")


class CorpusOptions(PipelineOptions):
    """Inputs and balancing of ``build_corpus`` (``--output``, ``--num_shards``, ``--codec``
    come from ``IOOptions``, ``--seed`` from ``SamplingOptions``)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--question", nargs="+", default=None, type=path_argument,
                            help="question pair globs or folders (default out/question)")
        parser.add_argument("--general", nargs="+", default=None, type=path_argument,
                            help="general (qa, doc) pair globs or folders "
                                 "(default out/qa out/doc)")
        parser.add_argument("--ratio", type=float, default=1.0,
                            help="question rows per general row (default 1.0)")
        parser.add_argument("--mode", default="downsample", choices=MODES,
                            help="downsample the larger side or cycle the smaller one")
        parser.add_argument("--valid_fraction", type=float, default=0.0,
                            help="fraction of groups held out in valid-*.parquet (default 0)")
        parser.add_argument("--num_valid_shards", type=int, default=1,
                            help="number of valid-*.parquet shards (default 1)")
        parser.add_argument("--weights", default=None,
                            help="per-scheme weights in [0, 1] of the general side, e.g. "
                                 "qa=1,doc=0.5: keep that share of the scheme's rows "
                                 "(seeded hash) before balancing (default: all 1)")
        parser.add_argument("--max_rows", type=int, default=DEFAULT_MAX_ROWS,
                            help="refuse a plan of more output rows than this "
                                 f"(default {DEFAULT_MAX_ROWS:,})")


OPTION_CLASSES = (IOOptions, SamplingOptions, CorpusOptions, LogOptions)


def pair_pattern(glob: str) -> str:
    """``glob`` itself, or ``glob/pairs-*-of-*.parquet`` when it names an output folder."""
    if any(ch in glob for ch in "*?[") or glob.endswith(".parquet"):
        return glob
    return shard_prefix(glob, f"{PAIRS_PREFIX}-*-of-*.parquet")


GENERAL_SCHEMES = tuple(scheme for scheme in PAIR_SCHEMES if scheme != QUESTION)


def parse_weights(value: str | None) -> dict[str, float]:
    """``--weights qa=1,doc=0.5`` → ``{"qa": 1.0, "doc": 0.5}``; raises ``OptionError``."""
    if value is None:
        return {}
    weights: dict[str, float] = {}
    for item in value.split(","):
        name, sep, number = item.strip().partition("=")
        if not sep or name not in GENERAL_SCHEMES:
            raise OptionError(f"--weights: expected SCHEME=W with SCHEME in {GENERAL_SCHEMES}, "
                              f"got {item.strip()!r}")
        if name in weights:
            raise OptionError(f"--weights: {name} given twice")
        try:
            weight = float(number)
        except ValueError:
            raise OptionError(f"--weights: {name}={number!r} is not a number") from None
        if not 0.0 <= weight <= 1.0:
            raise OptionError(f"--weights: {name}={weight} is not in [0, 1]")
        weights[name] = weight
    return weights


def weighted_counts(rows: Counter, weights: dict[str, float]) -> dict[str, dict[str, int]]:
    """Per scheme s of a side's ``rows`` (n_s rows): ``{"rows": n_s, "kept": round(w_s · n_s)}``."""
    return {scheme: {"rows": n, "kept": round(weights.get(scheme, 1.0) * n)}
            for scheme, n in sorted(rows.items())}


class WeightSchemes(beam.PTransform):
    """General rows → the ``kept`` smallest-hash rows of each scheme (``weighted_counts``)."""

    def __init__(self, counts: dict[str, dict[str, int]], seed: int):
        super().__init__()
        self.counts, self.seed = counts, seed

    def expand(self, rows):
        parts = []
        for scheme, count in self.counts.items():
            of_scheme = rows | f"Only_{scheme}" >> beam.Filter(
                lambda row, s: row["scheme"] == s, scheme)
            if count["kept"] < count["rows"]:
                of_scheme = (
                    of_scheme
                    | f"Weight_{scheme}" >> BalanceSide(scheme, count["rows"], count["kept"],
                                                        self.seed)
                    | f"Rows_{scheme}" >> beam.Values()
                )
            parts.append(of_scheme)
        return parts | "JoinSchemes" >> beam.Flatten()


SIDE_SCHEMES = {QUESTION: ("question",), GENERAL: ("qa", "doc")}
"""The schemes each side takes: a file of the other side's pairs (``--question`` and
``--general`` swapped) would balance the wrong rows."""


def scheme_rows(path: str, side: str) -> Counter:
    """Rows of one pair Parquet file per scheme (only the footer and the ``score`` and
    ``scheme`` columns are read), once ``column_problem`` and ``scheme_problem`` find nothing wrong.

    Raises ``OptionError`` naming the file (and column), before the pipeline runs: Beam would
    fail deep in a worker without naming the file, or take an unknown scheme.
    """
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        if not f.seek(0, io.SEEK_END):
            return Counter()
        f.seek(0)
        try:
            parquet = pq.ParquetFile(f)
            problem = column_problem(parquet)
            counts = Counter() if problem or not parquet.metadata.num_rows else Counter({
                item["values"]: item["counts"] for item in
                pc.value_counts(parquet.read(columns=["scheme"]).column(0)).to_pylist()})
            problem = problem or scheme_problem(counts, side)
        except (pa.ArrowException, OSError) as err:
            raise OptionError(f"{path}: not a readable Parquet file ({err})") from None
    if problem:
        raise OptionError(f"{path}: {problem}")
    return counts


def column_problem(parquet: pq.ParquetFile) -> str | None:
    """What keeps ``parquet``'s columns from being read as pair rows, or None: a missing pair
    column, a type that is not string (``score``: not a number), null values, a score outside
    [0, 1] or NaN. A file of zero rows may have untyped columns."""
    schema = parquet.schema_arrow
    missing = [name for name in PAIR_SCHEMA.names if name not in schema.names]
    if missing:
        return f"missing pair column(s) {missing}"
    if not parquet.metadata.num_rows:
        return None
    for field in PAIR_SCHEMA:
        kind = schema.field(field.name).type
        if pa.types.is_dictionary(kind):  # e.g. a pandas category: cast to its values
            kind = kind.value_type
        number = pa.types.is_floating(kind) or pa.types.is_integer(kind)
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        if not (number if field.name == "score" else text):
            return f"column {field.name!r} is {kind}, expected {field.type}"
        nulls = _null_count(parquet, field.name)
        if nulls:
            return f"column {field.name!r} has null values ({nulls:,} rows)"
    scores = parquet.read(columns=["score"]).column(0).cast(pa.float64())
    inside = pc.sum(pc.and_(pc.greater_equal(scores, 0.0), pc.less_equal(scores, 1.0)))
    if inside.as_py() != len(scores):
        return (f"column 'score' has {len(scores) - inside.as_py():,} value(s) outside [0, 1] "
                "or NaN")
    return None


def scheme_problem(rows: Counter, side: str) -> str | None:
    """What keeps rows of these ``scheme`` values from being ``side``'s, or None: a scheme not
    in ``schema.PAIR_SCHEMES`` or not in ``SIDE_SCHEMES[side]``."""
    schemes = set(rows)
    unknown = sorted(schemes - set(PAIR_SCHEMES))
    if unknown:
        return f"column 'scheme' has unknown value(s) {unknown} (known: {list(PAIR_SCHEMES)})"
    other = sorted(schemes - set(SIDE_SCHEMES[side]))
    if other:
        return (f"column 'scheme' has {other} rows, but --{side} takes "
                f"{list(SIDE_SCHEMES[side])} (--question and --general swapped?)")
    return None


def _null_count(parquet: pq.ParquetFile, name: str) -> int:
    """Nulls of column ``name``: from the footer statistics, or by reading the column when a
    row group has none."""
    meta = parquet.metadata
    leaf = [meta.schema.column(i).path for i in range(meta.num_columns)].index(name)
    total = 0
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(leaf).statistics
        if stats is None or not stats.has_null_count:
            return parquet.read(columns=[name]).column(0).null_count
        total += stats.null_count
    return total


def input_summaries(pattern: str) -> list[dict[str, Any]]:
    """Thresholds, variant and scheme from each ``_summary.json`` beside ``pattern``'s files."""
    folder = pattern.rsplit("/", 1)[0] if "/" in pattern else "."
    found = []
    for path in matching_files(shard_prefix(folder, SUMMARY_FILE)):
        try:
            summary = read_json(path)
        except ValueError as err:
            raise OptionError(f"{err}: remove it or rerun the pipeline that wrote it") from None
        found.append({
            "path": path, "pipeline": summary.get("pipeline"), "scheme": summary.get("scheme"),
            "variant": summary.get("variant"), "thresholds": summary.get("thresholds"),
            "max_pairs_per_group": summary.get("options", {}).get("max_pairs_per_group"),
        })
    return found


@dataclass(frozen=True)
class SideInput:
    """One side's globs as given, matched files and their rows per scheme."""

    globs: list[str]
    patterns: list[str]
    files: list[str]
    scheme_rows: Counter
    summaries: list[dict[str, Any]]


def resolve_side(name: str, globs: list[str]) -> SideInput:
    patterns = [pair_pattern(glob) for glob in globs]
    files: list[str] = []
    for glob, pattern in zip(globs, patterns, strict=True):
        found = matching_files(pattern)
        if not found:
            raise OptionError(f"--{name}: no Parquet file matches {glob!r} ({pattern})")
        files.extend(found)
    files = sorted(set(files))
    summaries = list({s["path"]: s for pattern in patterns
                      for s in input_summaries(pattern)}.values())
    rows = sum((scheme_rows(path, name) for path in files), Counter())
    return SideInput(globs, patterns, files, rows, summaries)


@dataclass(frozen=True)
class CorpusSettings:
    output: str
    seed: int
    ratio: float
    mode: str
    valid_fraction: float
    num_shards: int
    num_valid_shards: int
    max_rows: int
    codec: str
    runner: str
    question: list[str]
    general: list[str]
    weights: dict[str, float]

    @classmethod
    def from_options(cls, options: PipelineOptions) -> CorpusSettings:
        """Defaults and checks; raises ``OptionError`` naming the option."""
        corpus = options.view_as(CorpusOptions)
        io_opts = options.view_as(IOOptions)
        if io_opts.input is not None:
            raise OptionError("--input is not used by build_corpus: give --question/--general")
        if not 0.0 <= corpus.valid_fraction < 1.0:
            raise OptionError(f"--valid_fraction must be in [0, 1), got {corpus.valid_fraction}")
        for name in ("num_shards", "num_valid_shards", "max_rows"):
            value = getattr(io_opts if name == "num_shards" else corpus, name)
            if value < 1:
                raise OptionError(f"--{name} must be >= 1, got {value}")
        if io_opts.codec not in CODECS:
            raise OptionError(f"--codec must be one of {CODECS}")
        try:
            balance_targets(1, 1, corpus.ratio, corpus.mode)
        except ValueError as err:
            raise OptionError(str(err)) from None
        return cls(
            output=io_opts.output or DEFAULT_OUTPUT,
            seed=options.view_as(SamplingOptions).seed,
            ratio=corpus.ratio,
            mode=corpus.mode,
            valid_fraction=corpus.valid_fraction,
            num_shards=io_opts.num_shards,
            num_valid_shards=corpus.num_valid_shards,
            max_rows=corpus.max_rows,
            codec=io_opts.codec,
            runner=options.view_as(StandardOptions).runner or "DirectRunner",
            question=corpus.question or DEFAULT_QUESTION,
            general=corpus.general or DEFAULT_GENERAL,
            weights=parse_weights(corpus.weights),
        )

    def layout(self) -> Layout:
        """Where ``ShuffleIntoShards`` writes: the staging folder of ``output``."""
        return Layout(staging_dir(self.output), self.seed, self.valid_fraction, self.num_shards,
                      self.num_valid_shards, self.codec)


def output_patterns(output: str) -> list[str]:
    """Globs of every file ``build_corpus`` writes into ``output``, and the report of the
    corpus it replaces (a new corpus makes it stale)."""
    return [shard_prefix(output, f"{split}-*-of-*.parquet") for split in (TRAIN, VALID)] + [
        shard_prefix(output, MANIFEST_FILE), shard_prefix(output, REPORT_FILE)]


def parse_settings(argv: Sequence[str] | None) -> tuple[PipelineOptions, CorpusSettings]:
    """Parse and check ``argv`` (touches no file); raises ``OptionError`` naming the option."""
    options = parse_options(argv, __doc__.splitlines()[0], OPTION_CLASSES,
                            prog="python -m pipelines.build_corpus")
    return options, CorpusSettings.from_options(options)


def build_pipeline(options: PipelineOptions, settings: CorpusSettings):
    """Resolve inputs (matching files, counting rows), plan and build the pipeline, which
    writes into ``staging_dir(settings.output)``.

    Returns ``(pipeline, static manifest part)``; writes nothing.
    """
    sides = {QUESTION: resolve_side(QUESTION, settings.question),
             GENERAL: resolve_side(GENERAL, settings.general)}
    weighted = (weighted_counts(sides[GENERAL].scheme_rows, settings.weights)
                if settings.weights else {})
    rows = {QUESTION: sides[QUESTION].scheme_rows.total(),
            GENERAL: sum(c["kept"] for c in weighted.values()) if weighted
            else sides[GENERAL].scheme_rows.total()}
    try:
        targets = balance_targets(rows[QUESTION], rows[GENERAL], settings.ratio, settings.mode)
    except ValueError as err:
        raise OptionError(str(err)) from None
    planned = sum(targets.values())
    if planned > settings.max_rows:
        raise OptionError(
            f"--max_rows: the plan is {planned:,} rows ({targets[QUESTION]:,} question + "
            f"{targets[GENERAL]:,} general, --mode {settings.mode} --ratio {settings.ratio}) "
            f"> --max_rows {settings.max_rows:,}; change --ratio/--mode or raise --max_rows")
    static = {
        "format": MANIFEST_FORMAT,
        "version": pipelines.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "schema": {field.name: str(field.type) for field in PAIR_SCHEMA},
        "settings": asdict(settings),
        "seed": settings.seed,
        "ratio": settings.ratio,
        "mode": settings.mode,
        "inputs": {side: {"globs": value.globs, "patterns": value.patterns,
                          "files": value.files, "rows": value.scheme_rows.total(),
                          "summaries": value.summaries, "rows_out": targets[side]}
                   for side, value in sides.items()},
        "weights": {"weights": settings.weights, "general_rows_per_scheme": weighted},
    }
    pipeline = make_pipeline(options)
    balanced = []
    for side, value in sides.items():
        read = pipeline | f"Read_{side}" >> ReadPairFiles(value.files, side)
        if side == GENERAL and weighted:
            read |= "WeightSchemes" >> WeightSchemes(weighted, settings.seed)
        balanced.append(
            read | f"Balance_{side}" >> BalanceSide(side, rows[side], targets[side],
                                                    settings.seed)
        )
    (
        balanced
        | "JoinSides" >> beam.Flatten()
        | "ShuffleIntoShards" >> ShuffleIntoShards(settings.layout())
        | "WriteManifest" >> WriteManifest(staging_dir(settings.output), static)
    )
    return pipeline, static


def format_manifest(document: dict[str, Any], seconds: float) -> str:
    """A few readable lines about a written corpus."""
    inputs = document["inputs"]
    lines = [
        f"build_corpus {document['version']}: done in {seconds:.1f} s",
        *(f"  {side:<9} {inputs[side]['rows']:,} rows in {len(inputs[side]['files'])} file(s)"
          f" -> {inputs[side]['rows_out']:,}" for side in SIDES),
        f"  balance   ratio {document['ratio']} ({document['mode']}, seed {document['seed']})",
        f"  rows      {document['total_rows']:,}: "
        + ", ".join(f"{k} {v:,}" for k, v in document["rows_per_scheme"].items())
        + " | " + ", ".join(f"{k} {v:,}" for k, v in document["rows_per_split"].items()),
        f"  shards    {len(document['shards'])} file(s) in {document['settings']['output']}",
        f"  hash      {document['content_hash']}",
    ]
    return "\n".join(lines)


def run(argv: Sequence[str] | None = None) -> PipelineResult:
    """Build the corpus, write shards and ``_manifest.json``, print a summary.

    The output folder is checked before any input is read, and the new corpus replaces the
    earlier one only when the run succeeded (``io.run_staged``).
    """
    options, settings = parse_settings(argv)
    configure_logging(options)
    prepare_output(settings.output)
    pipeline, static = build_pipeline(options, settings)
    _LOG.info("build_corpus: %s question rows, %s general rows -> %s",
              static["inputs"][QUESTION]["rows"], static["inputs"][GENERAL]["rows"],
              settings.output)
    start = time.monotonic()

    def run_pipeline() -> PipelineResult:
        result = pipeline.run()
        result.wait_until_finish()
        return result

    result = run_staged(settings.output, output_patterns(settings.output), "build_corpus",
                        run_pipeline)
    document = read_json(shard_prefix(settings.output, MANIFEST_FILE))
    print(format_manifest(document, time.monotonic() - start), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main(run))
