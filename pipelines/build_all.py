"""The whole demo corpus in one command: QA, document and question pairs, the balanced corpus,
and its report, from the bundled real samples.

    python -m pipelines.build_all [--output out] [--seed S] [--ratio 1.0]
                                  [--mode downsample|cycle] [--valid_fraction F]
                                  [--num_shards N] [Beam options]

Runs, in order: ``qa_pairs`` → ``OUT/qa``, ``doc_pairs`` → ``OUT/doc``, ``question_pairs`` →
``OUT/question`` (each on its bundled sample), ``build_corpus`` (question vs qa + doc) →
``OUT/corpus``, and ``report`` → ``OUT/corpus/_report.html``. Beam options (``--runner``,
``--direct_num_workers``, ``--direct_running_mode``, ...) are passed to every pipeline.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines import build_corpus, doc_pairs, qa_pairs, question_pairs, report
from pipelines.io import OutputError
from pipelines.options import DEFAULT_NUM_SHARDS, OptionError, path_argument, unknown_arguments

PAIR_STEPS = (("qa", qa_pairs), ("doc", doc_pairs), ("question", question_pairs))


def build_all(output: str, corpus_args: Sequence[str], beam_args: Sequence[str],
              seed: int = 0, num_shards: int = DEFAULT_NUM_SHARDS) -> str:
    """Run every step (the corpus options are checked before the first); return the path of
    the report."""
    common = [f"--seed={seed}", f"--num_shards={num_shards}", *beam_args]
    corpus_argv = [
        "--question", f"{output}/question", "--general", f"{output}/qa", f"{output}/doc",
        f"--output={output}/corpus", *corpus_args, *common,
    ]
    build_corpus.parse_settings(corpus_argv)
    for name, module in PAIR_STEPS:
        print(f"== {module.__name__} -> {output}/{name}", flush=True)
        module.run([f"--output={output}/{name}", *common])
    print(f"== pipelines.build_corpus -> {output}/corpus", flush=True)
    build_corpus.run(corpus_argv)
    print("== pipelines.report", flush=True)
    return report.build_report(f"{output}/corpus")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.build_all", allow_abbrev=False,
        description=" ".join(__doc__.split("\n\n")[0].split()),
        epilog="Other arguments (Beam options, --log_level) are passed to every pipeline.")
    parser.add_argument("--output", default="out", type=path_argument,
                        help="output folder (default out)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every sampling choice")
    parser.add_argument("--num_shards", type=int, default=DEFAULT_NUM_SHARDS,
                        help="Parquet shards of every output")
    parser.add_argument("--ratio", type=float, default=1.0, help="question rows per general row")
    parser.add_argument("--mode", default="downsample", choices=("downsample", "cycle"))
    parser.add_argument("--valid_fraction", type=float, default=0.0,
                        help="fraction of groups held out as valid-*.parquet")
    args, beam_args = parser.parse_known_args(argv)
    unknown = unknown_arguments(beam_args)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    corpus_args = [f"--ratio={args.ratio}", f"--mode={args.mode}",
                   f"--valid_fraction={args.valid_fraction}"]
    try:
        path = build_all(args.output.rstrip("/"), corpus_args, beam_args, args.seed,
                         args.num_shards)
    except (OptionError, OutputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
