"""Per-scheme admission thresholds: the one place where they are defined.

A pair of sentences from one group is admitted when ``low <= score < high``. ``low`` keeps
pairs similar enough to be paraphrase-like; ``high`` drops near-duplicates (identical up to
punctuation) that teach a generator nothing. The document scheme has a higher ``low`` than the
QA scheme because co-occurring in one document is weaker evidence of similarity than
answering one question (recipe, "第二个方案"). How the numbers were chosen:
docs/similarity.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Thresholds:
    """Admission interval ``low <= score < high`` for one scheme."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high:
            raise ValueError(f"need 0 <= low < high, got low={self.low}, high={self.high}")

    def admits(self, value: float) -> bool:
        """Whether a pair with similarity ``value`` is admitted."""
        return self.low <= value < self.high


SCHEMES = MappingProxyType(
    {
        "qa": Thresholds(low=0.4, high=0.9),
        "doc": Thresholds(low=0.55, high=0.9),
        "question": Thresholds(low=0.0, high=0.95),
    }
)
"""Scheme name (``qa``: answers to one question, ``doc``: sentences of one document,
``question``: a group of questions people already judged similar, so only near-duplicates are
dropped) → ``Thresholds`` under the default variant (``multiset``)."""
