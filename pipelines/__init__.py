"""Apache Beam pipelines that turn real Chinese text into similar-sentence pairs.

Entry points (each ``run(argv=None) -> PipelineResult``, runnable with ``python -m``):
``pipelines.qa_pairs`` (answers of one question), ``pipelines.doc_pairs`` (sentences of
one document), ``pipelines.question_pairs`` (groups of similar questions) and
``pipelines.build_corpus`` (the balanced, shuffled training shards); ``pipelines.report``
(HTML report of a corpus) and ``pipelines.build_all`` (the whole demo) are plain CLIs.
Shared pieces: ``options``, ``io``, ``schema``, ``transforms``, ``summary``, ``job``,
``hashing``, ``corpus``. All splitting and scoring comes from ``similarity``.
"""

import logging
from importlib.metadata import PackageNotFoundError, version


def _not_apitools_notice(record: logging.LogRecord) -> bool:
    """False for the notice Beam logs on the root logger when it is imported without its GCP
    extra ("apitools not found, ..."): it concerns BigQuery only and would open every command.
    Installed here, before any module of ours imports Beam."""
    return not record.getMessage().startswith("apitools not found")


logging.getLogger().addFilter(_not_apitools_notice)

try:
    __version__ = version("simpairs")
except PackageNotFoundError:
    __version__ = "unknown (not installed)"
