"""Running a pair pipeline end to end: options → graph → run → ``_summary.json`` + printout.

``qa_pairs`` and ``doc_pairs`` are a ``PairJob`` each; everything else is shared here.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.runners.runner import PipelineResult

import similarity
from pipelines.io import (
    OutputError,
    ReadRecords,
    WriteDeadLetters,
    WritePairs,
    bundled_sample,
    matching_files,
    output_patterns,
    prepare_output,
    run_staged,
    shard_prefix,
    staging_dir,
    write_json,
)
from pipelines.options import (
    LogOptions,
    OptionError,
    PairSettings,
    make_pipeline,
    parse_options,
)
from pipelines.schema import (
    DROPPED_AUDIT_PREFIX,
    PAIRS_PREFIX,
    REJECTED_PREFIX,
    SUMMARY_FILE,
    Group,
)
from pipelines.summary import build_summary, collect_counters, format_summary
from pipelines.transforms import DedupPairs, GroupsToPairs, ParseRecords

_LOG = logging.getLogger("pipelines")


@dataclass(frozen=True)
class PairJob:
    """What distinguishes one pair pipeline from another."""

    name: str
    scheme: str
    sample: str
    to_group: Callable[[dict[str, Any]], Group]
    cross_text_only: bool
    text_noun: str
    description: str
    split_texts: bool = True
    max_pairs_per_group: int = 0


def resolve_settings(options, job: PairJob) -> PairSettings:
    try:
        return PairSettings.from_options(
            options, job.scheme, bundled_sample(job.sample), job.cross_text_only,
            job.split_texts, job.max_pairs_per_group,
        )
    except ValueError as err:
        raise OptionError(str(err)) from None


def add_pair_steps(pipeline: beam.Pipeline, settings: PairSettings, job: PairJob) -> None:
    """Read → validate (dead letters) → sentences → admitted pairs → dedup → Parquet, all
    written into ``staging_dir(settings.output)`` (``run_job`` promotes them on success)."""
    folder = staging_dir(settings.output)
    raw, unreadable = pipeline | "ReadRecords" >> ReadRecords(
        settings.input, settings.max_record_bytes, settings.input_format
    )
    groups, invalid = raw | "ParseRecords" >> ParseRecords(job.to_group, settings.max_record_bytes)
    (
        groups
        | "GroupsToPairs" >> GroupsToPairs(settings.scoring, folder)
        | "DedupPairs" >> DedupPairs()
        | "WritePairs" >> WritePairs(folder, settings.num_shards, settings.codec)
    )
    (
        (unreadable, invalid)
        | "JoinDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters" >> WriteDeadLetters(folder)
    )


def build_pipeline(
    argv: Sequence[str] | None, job: PairJob
) -> tuple[beam.Pipeline, PairSettings]:
    """Parse ``argv`` and build (do not run) the pipeline; touches no input or output file."""
    options = parse_options(argv, job.description, prog=f"python -m pipelines.{job.name}")
    settings = resolve_settings(options, job)
    pipeline = make_pipeline(options)
    add_pair_steps(pipeline, settings, job)
    return pipeline, settings


def configure_logging(options) -> None:
    """Show our log lines of ``--log_level`` and above (default WARNING: the summary and
    warnings only; INFO adds progress lines, DEBUG Beam's own detail too)."""
    level = getattr(logging, options.view_as(LogOptions).log_level)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    _LOG.setLevel(level)
    if level < logging.INFO:
        root.setLevel(level)


def run_job(argv: Sequence[str] | None, job: PairJob) -> PipelineResult:
    """Build, run to completion, write ``DIR/_summary.json`` and print the summary.

    The output folder is checked before any input is read; everything is written into its
    staging folder and replaces the earlier output only when the run succeeded.
    """
    pipeline, settings = build_pipeline(argv, job)
    configure_logging(pipeline.options)
    if not matching_files(settings.input):
        raise OptionError(f"--input: no file matches {settings.input!r}")
    stage = prepare_output(settings.output)
    scoring = settings.scoring
    _LOG.info("%s: %s -> %s (runner %s, %s, admit %s <= score < %s)", job.name, settings.input,
              settings.output, settings.runner, job.scheme, scoring.low, scoring.high)
    start = time.monotonic()

    def run_and_summarise() -> tuple[PipelineResult, dict[str, Any]]:
        result = pipeline.run()
        result.wait_until_finish()
        final = {path.rsplit("/", 1)[-1]: shard_prefix(settings.output, path.rsplit("/", 1)[-1])
                 for path in matching_files(shard_prefix(stage, "*"))}
        summary = build_summary(
            pipeline=job.name,
            settings=settings.as_dict(),
            beam_options=pipeline.options.get_all_options(drop_default=True),
            counters=collect_counters(result),
            variant=similarity.jaccard.resolve_variant(settings.scoring.variant),
            seconds=time.monotonic() - start,
            outputs={
                "pairs": sorted(p for n, p in final.items() if n.startswith(PAIRS_PREFIX)),
                "rejected": sorted(p for n, p in final.items() if n.startswith(REJECTED_PREFIX)),
                "dropped": sorted(p for n, p in final.items()
                                  if n.startswith(DROPPED_AUDIT_PREFIX)),
                "summary": shard_prefix(settings.output, SUMMARY_FILE),
            },
        )
        write_json(shard_prefix(stage, SUMMARY_FILE), summary)
        return result, summary

    result, summary = run_staged(settings.output, output_patterns(settings.output), job.name,
                                 run_and_summarise)
    print(format_summary(summary, job.text_noun), flush=True)
    return result


def main(run: Callable[[Sequence[str] | None], PipelineResult], argv=None) -> int:
    """Console entry: run, turning an ``OptionError`` into a one-line message and exit code 2."""
    try:
        run(argv)
    except (OptionError, OutputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
