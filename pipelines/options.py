"""Command-line options of the pair pipelines and the choice of the local runner.

Every option has a default (a ``required=True`` argument in any ``PipelineOptions`` subclass
breaks every other pipeline parsed in the same process); values are checked in
``PairSettings.from_options`` instead, with errors that name the option.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
    _BeamArgumentParser,
)

import similarity
from pipelines.io import CODECS, FORMATS, source_name
from pipelines.transforms import ScoringConfig
from similarity.pair_filters import DEFAULT_BOILERPLATE_GROUPS, RULES, SCHEME_RULES

DEFAULT_MAX_RECORD_BYTES = 1 << 20
DEFAULT_MAX_LEN = 64
DEFAULT_NUM_SHARDS = 4
DEFAULT_FANOUT_BLOCK = 10_000
LOCAL_RUNNERS = ("DirectRunner", "direct", "SwitchingDirectRunner")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
WORKER_FALSE_ALARMS = {"apache_beam.options.pipeline_options": "ERROR", "__main__": "ERROR"}
"""Loggers of an SDK worker process held to ERROR: it imports none of our option classes, so
Beam warns "Discarding unparseable args" about ours, and its ``sdk_worker_main`` (``__main__``
there) warns of a missing ``semi_persistent_directory`` that local runs never have."""


class OptionError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


def path_argument(value: str) -> str:
    """argparse ``type`` of a path or glob option: an empty value is an error (it was taken
    for "not given", so ``--output ""`` wrote into the default folder), and so is one that is
    not UTF-8 (Beam's options cannot carry it: a traceback); a glob matches such a file."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if source_name(value) != value:
        raise argparse.ArgumentTypeError(
            f"{source_name(value)} is not UTF-8; match it with a glob (DIR/*.jsonl) instead")
    return value


class IOOptions(PipelineOptions):
    """Where records come from and where shards go."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--input", default=None, type=path_argument,
            help="glob of JSONL (optionally compressed) or Parquet inputs; default: the "
                 "bundled real sample")
        parser.add_argument(
            "--input_format", default="auto", choices=FORMATS,
            help="'auto' reads *.parquet as Parquet and anything else as JSONL")
        parser.add_argument(
            "--output", default=None, type=path_argument,
            help="output folder (local or gs://); default ./out/SCHEME")
        parser.add_argument(
            "--num_shards", type=int, default=DEFAULT_NUM_SHARDS,
            help="number of Parquet shards; 0 lets the runner choose")
        parser.add_argument("--codec", default="zstd", choices=CODECS, help="Parquet compression")
        parser.add_argument(
            "--max_record_bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES,
            help="longer input lines are dead-lettered as too_large (default 1 MiB)")


class PairOptions(PipelineOptions):
    """How sentences are split, scored and admitted."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--low", type=float, default=None,
                            help="admit pairs with low <= score; default: the scheme's")
        parser.add_argument("--high", type=float, default=None,
                            help="admit pairs with score < high; default: the scheme's")
        parser.add_argument(
            "--variant", default="default", choices=("default", *similarity.VARIANTS),
            help=f"Jaccard variant of the score (default: 'default', i.e. "
                 f"{similarity.DEFAULT_VARIANT}; see docs/similarity.md)")
        parser.add_argument("--max_len", type=int, default=DEFAULT_MAX_LEN,
                            help="longest sentence in characters before re-cutting")
        parser.add_argument(
            "--lsh_cutoff", type=int, default=None,
            help="groups with more sentences use the MinHash LSH path; default: the library's")
        parser.add_argument(
            "--fanout_block", type=int, default=DEFAULT_FANOUT_BLOCK,
            help="groups with more sentences are cut into blocks of this size and every block "
                 "pair is scored as a separate, reshuffled task (b blocks: b(b+1)/2 tasks, each "
                 "sentence profiled b times, so keep it for rare huge groups)")
        parser.add_argument(
            "--pair_copied_answers", action="store_true",
            help="QA: also pair sentences across answers that share a sentence; by default "
                 "such answers are copies of one text and count as one answer")
        parser.add_argument(
            "--max_pairs_per_group", type=int, default=None,
            help="keep at most N admitted pairs per group, those with the smallest content hash "
                 "(seeded by --seed); 0: no cap; default: the pipeline's (question 20, else 0)")
        parser.add_argument(
            "--pair_filters", default=None,
            help="comma-separated pair filter rules applied to admitted pairs (similarity."
                 f"pair_filters: {', '.join(RULES)}), or 'none'; default: the scheme's")
        parser.add_argument(
            "--boilerplate_groups", type=int, default=DEFAULT_BOILERPLATE_GROUPS,
            help="the boilerplate rule drops pairs with a sentence found in at least this many "
                 f"groups of the input (default {DEFAULT_BOILERPLATE_GROUPS})")


class SamplingOptions(PipelineOptions):
    """The seed of every content-hash choice (capping, balancing, shuffling, splitting)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--seed", type=int, default=0,
            help="seed of the content hashes behind every sampling choice (default 0)")


class LogOptions(PipelineOptions):
    """How much the run logs."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--log_level", default="WARNING", choices=LOG_LEVELS, type=str.upper,
            help="show log lines of this level and above (default WARNING: the summary and "
                 "warnings only; INFO: progress; DEBUG: Beam's detail)")


OPTION_CLASSES = (IOOptions, PairOptions, SamplingOptions, LogOptions)


def unknown_arguments(args: Sequence[str]) -> list[str]:
    """The arguments of ``args`` that no ``PipelineOptions`` subclass (Beam's or ours) parses,
    found the way Beam itself parses them (``PipelineOptions.get_all_options``)."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    for option_class in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        option_class._add_argparse_args(parser)
    return parser.parse_known_args(list(args))[1]


def parse_options(
    argv: Sequence[str] | None, description: str,
    option_classes: Sequence[type[PipelineOptions]] = OPTION_CLASSES, prog: str | None = None,
) -> PipelineOptions:
    """Parse ``argv`` into ``PipelineOptions``; ``--help``, malformed values and unknown
    options exit with usage (status 2), the latter naming every unknown option. ``prog``
    names the command in the usage line (``python -m pipelines.qa_pairs``).

    Our own options are checked by a strict argparse parser first (so ``--low abc`` names the
    option); what is left must be an option some ``PipelineOptions`` subclass knows (Beam's
    ``--runner``, ``--direct_num_workers``, ``--project``, ...): Beam itself only logs
    "Discarding unparseable args" and runs on defaults, so ``--hihg 0.45`` would be lost.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog=prog, description=description, allow_abbrev=False,
        epilog="Standard Beam options are accepted too: --runner, --direct_num_workers, "
               "--direct_running_mode, --project, --region, --temp_location, --setup_file ...")
    for option_class in option_classes:
        option_class._add_argparse_args(parser)
    _, rest = parser.parse_known_args(argv)
    unknown = unknown_arguments(rest)
    if unknown:
        ours = [flag for action in parser._actions for flag in action.option_strings]
        flags = [arg.split("=", 1)[0] for arg in unknown]
        hints = [f"{flag}: did you mean {close[0]}?" for flag in flags
                 if (close := difflib.get_close_matches(flag, ours, n=1))]
        parser.error(f"unrecognized arguments: {' '.join(unknown)}"
                     + (f" ({'; '.join(hints)})" if hints else ""))
    return PipelineOptions(argv)


def pair_filter_names(value: str | None, scheme: str) -> tuple[str, ...]:
    """``--pair_filters``: ``None`` → the scheme's ``SCHEME_RULES``, ``'none'`` → no rule, else
    the comma-separated names (checked by ``ScoringConfig.check``)."""
    if value is None:
        return SCHEME_RULES[scheme]
    if value.strip() == "none":
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


@dataclass(frozen=True)
class PairSettings:
    """Checked, resolved settings of one pair pipeline run (recorded in ``_summary.json``)."""

    input: str
    input_format: str
    output: str
    num_shards: int
    codec: str
    max_record_bytes: int
    runner: str
    scoring: ScoringConfig

    @classmethod
    def from_options(
        cls, options: PipelineOptions, scheme: str, default_input: str, cross_text_only: bool,
        split_texts: bool = True, max_pairs_per_group: int = 0,
    ) -> PairSettings:
        """Resolve defaults (bundled sample, ``./out/SCHEME``, ``similarity.SCHEMES[scheme]``,
        ``max_pairs_per_group`` when ``--max_pairs_per_group`` is not given).

        Raises ``ValueError`` naming the offending option.
        """
        io_opts = options.view_as(IOOptions)
        pair_opts = options.view_as(PairOptions)
        runner = options.view_as(StandardOptions).runner or "DirectRunner"
        if io_opts.input is None and runner not in LOCAL_RUNNERS + ("FnApiRunner",):
            raise ValueError(f"--input is required with --runner={runner}: the bundled sample "
                             "is a local file that remote workers cannot read")
        thresholds = similarity.SCHEMES[scheme]
        scoring = ScoringConfig(
            scheme=scheme,
            low=thresholds.low if pair_opts.low is None else pair_opts.low,
            high=thresholds.high if pair_opts.high is None else pair_opts.high,
            variant=pair_opts.variant,
            max_len=pair_opts.max_len,
            lsh_cutoff=(similarity.LSH_CUTOFF if pair_opts.lsh_cutoff is None
                        else pair_opts.lsh_cutoff),
            fanout_block=pair_opts.fanout_block,
            cross_text_only=cross_text_only,
            split_texts=split_texts,
            pair_copied_answers=pair_opts.pair_copied_answers,
            max_pairs_per_group=(max_pairs_per_group if pair_opts.max_pairs_per_group is None
                                 else pair_opts.max_pairs_per_group),
            seed=options.view_as(SamplingOptions).seed,
            pair_filters=pair_filter_names(pair_opts.pair_filters, scheme),
            boilerplate_groups=pair_opts.boilerplate_groups,
        )
        scoring.check()
        if io_opts.max_record_bytes < 1:
            raise ValueError(f"--max_record_bytes must be >= 1, got {io_opts.max_record_bytes}")
        if io_opts.num_shards < 0:
            raise ValueError(f"--num_shards must be >= 0, got {io_opts.num_shards}")
        return cls(
            input=io_opts.input or default_input,
            input_format=io_opts.input_format,
            output=io_opts.output or f"out/{scheme}",
            num_shards=io_opts.num_shards,
            codec=io_opts.codec,
            max_record_bytes=io_opts.max_record_bytes,
            runner=runner,
            scoring=scoring,
        )

    def as_dict(self) -> dict[str, Any]:
        """All settings in one flat dict (the scoring fields beside the I/O fields)."""
        flat = asdict(self)
        scoring = flat.pop("scoring")
        return {**flat, **scoring}


def make_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A ``Pipeline`` for ``options``; ``DirectRunner`` runs on Beam's in-process FnApiRunner.

    Beam's ``DirectRunner`` first tries to download the Prism runner binary, which stalls or
    fails offline, then falls back to the FnApiRunner for batch pipelines like ours. We go
    there directly (for ``--runner=FnApiRunner`` too), configured the way the DirectRunner
    configures it, so ``--direct_num_workers`` and ``--direct_running_mode`` apply and the
    options reach the SDK worker processes, whose log level follows ``--log_level`` unless
    ``--default_sdk_harness_log_level`` is given. Other runners are untouched.
    """
    runner = options.view_as(StandardOptions).runner
    if runner is not None and runner not in LOCAL_RUNNERS + ("FnApiRunner",):
        try:
            return beam.Pipeline(options=options)
        except ValueError as err:  # "Unexpected pipeline runner: X. Valid values are ..."
            raise OptionError(f"--runner: {err}") from None
    worker = options.view_as(WorkerOptions)
    if worker.default_sdk_harness_log_level is None:
        worker.default_sdk_harness_log_level = options.view_as(LogOptions).log_level
        worker.sdk_harness_log_level_overrides = {
            **WORKER_FALSE_ALARMS, **(worker.sdk_harness_log_level_overrides or {})}
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return beam.Pipeline(runner=fn_runner.FnApiRunner(provision_info=provision), options=options)
