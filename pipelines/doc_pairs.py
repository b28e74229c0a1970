"""Document scheme: sentences of one document become similar-sentence pairs.

    python -m pipelines.doc_pairs [--input GLOB] [--output DIR] [--low X --high Y] [--max_len N]
                                  [--num_shards N] [Beam options]

Input lines: ``{"id": str, "text": str}`` (or Parquet with those columns). The text is split
with ``similarity.split_sentences(text, max_len)``; pairs inside the document are kept when
``SCHEMES["doc"].low <= score < SCHEMES["doc"].high`` and no pair filter of the scheme
(``similarity.pair_filters.SCHEME_RULES["doc"]``) drops them; judged document pairs stay far
less precise than QA pairs (docs/similarity.md). Without arguments: the bundled real sample
``pipelines/data/docs_sample.jsonl`` → ``./out/doc``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from apache_beam.runners.runner import PipelineResult

from pipelines.job import PairJob, main, run_job
from pipelines.schema import doc_group

JOB = PairJob(
    name="doc_pairs",
    scheme="doc",
    sample="docs_sample.jsonl",
    to_group=doc_group,
    cross_text_only=False,
    text_noun="documents",
    description=__doc__.splitlines()[0],
)


def run(argv: Sequence[str] | None = None) -> PipelineResult:
    """Run the document pipeline to completion and return its result (module docstring)."""
    return run_job(argv, JOB)


if __name__ == "__main__":
    sys.exit(main(run))
