"""Question scheme: questions people already grouped as similar become similar-sentence pairs.

    python -m pipelines.question_pairs [--input GLOB] [--output DIR] [--max_pairs_per_group N]
                                       [--seed S] [--max_len N] [--low X --high Y]
                                       [--num_shards N] [Beam options]

Input lines: ``{"id": str, "texts": [str, ...]}`` or the reference SimBERT format
``{"text": str, "synonyms": [str, ...]}`` (optional ``id``; default ``"text-"`` + a hash of
``text``), or Parquet with those columns. Cleaning, each rule counted in ``_summary.json``:

1. every text is normalised with ``similarity.normalise`` and kept whole (questions are not
   split into sentences);
2. blank texts are skipped (``texts_without_sentences``); texts longer than ``--max_len``
   characters (default 64) are dropped as ``too_long``; then the sentence filters
   ``similarity.text.QUESTION_FILTERS`` (``too_short``: fewer than 3 letters/digits,
   ``masked``, ``mostly_symbols``, ``low_cjk_ratio``, ...) — counters
   ``sentences_dropped_<rule>``;
3. repeats of a normalised text inside one group are kept once (``duplicate_sentences``).

Every pair of the remaining texts of a group is scored and kept when
``SCHEMES["question"].low <= score < SCHEMES["question"].high`` (only near-duplicates are
dropped: the grouping already says the texts are similar), then the scheme's pair filter
``near_copy`` drops what differs by a hedge, an inserted span or a character or two
(``pairs_dropped_near_copy``). At most ``--max_pairs_per_group``
pairs (default 20; 0 = all) are kept per group: those with the smallest
``content_hash(seed, text_a, text_b)``, so a 40-question group (780 pairs) cannot dominate.
A group of over 1,000 pairs per kept pair (201 questions at the default cap) is not scored
whole when the pair filters are pairwise (``near_copy`` is): the same pairs are found by
scoring a few hundred, in O(n + cap) memory (``pipelines.group_cap``; the pairs never scored
count in ``pairs_skipped_by_group_cap``).
Then the global dedup of the QA/document pipelines. Without arguments: the bundled real
samples ``pipelines/data/groups_*.jsonl`` → ``./out/question``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from apache_beam.runners.runner import PipelineResult

from pipelines.job import PairJob, main, run_job
from pipelines.schema import question_group

DEFAULT_MAX_PAIRS_PER_GROUP = 20

JOB = PairJob(
    name="question_pairs",
    scheme="question",
    sample="groups_*.jsonl",
    to_group=question_group,
    cross_text_only=False,
    text_noun="questions",
    description=__doc__.splitlines()[0],
    split_texts=False,
    max_pairs_per_group=DEFAULT_MAX_PAIRS_PER_GROUP,
)


def run(argv: Sequence[str] | None = None) -> PipelineResult:
    """Run the question pipeline to completion and return its result (module docstring)."""
    return run_job(argv, JOB)


if __name__ == "__main__":
    sys.exit(main(run))
