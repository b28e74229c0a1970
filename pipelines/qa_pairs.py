"""QA scheme: sentences of different answers to one question become similar-sentence pairs.

    python -m pipelines.qa_pairs [--input GLOB] [--output DIR] [--low X --high Y] [--max_len N]
                                 [--num_shards N] [Beam options]

Input lines: ``{"id": str, "question": str, "answers": [str, ...]}`` (or Parquet with those
columns). Every answer is split with ``similarity.split_sentences(answer, max_len)``; sentence
pairs are scored across different answers only (never two sentences of one answer; answers
that share a sentence are copies of one text and count as one answer, ``transforms.answer_parts``,
unless ``--pair_copied_answers``) and kept
when ``SCHEMES["qa"].low <= score < SCHEMES["qa"].high`` and no pair filter of the scheme
(``similarity.pair_filters.SCHEME_RULES["qa"]``) drops them. Without arguments: the bundled real
sample ``pipelines/data/qa_sample.jsonl`` → ``./out/qa``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from apache_beam.runners.runner import PipelineResult

from pipelines.job import PairJob, main, run_job
from pipelines.schema import qa_group

JOB = PairJob(
    name="qa_pairs",
    scheme="qa",
    sample="qa_sample.jsonl",
    to_group=qa_group,
    cross_text_only=True,
    text_noun="answers",
    description=__doc__.splitlines()[0],
)


def run(argv: Sequence[str] | None = None) -> PipelineResult:
    """Run the QA pipeline to completion and return its result (see the module docstring)."""
    return run_job(argv, JOB)


if __name__ == "__main__":
    sys.exit(main(run))
