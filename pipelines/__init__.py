"""Apache Beam pipelines that turn real Chinese text into similar-sentence pairs.

Entry points (each ``run(argv=None) -> PipelineResult``, runnable with ``python -m``):
``pipelines.qa_pairs`` (answers of one question) and ``pipelines.doc_pairs`` (sentences of
one document). Shared pieces: ``options``, ``io``, ``schema``, ``transforms``, ``summary``,
``job``. All splitting and scoring comes from ``similarity``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("simpairs")
except PackageNotFoundError:
    __version__ = "unknown (not installed)"
