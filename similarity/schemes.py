"""Per-scheme admission thresholds: the one place where they are defined.

A pair of sentences from one group is admitted when ``low <= score < high``. ``low`` keeps
pairs similar enough to be paraphrase-like; ``high`` drops near-duplicates that teach a
generator nothing. Each band is the one with the most paraphrase + related (P+R) pairs at the
best P+R share on pairs judged by reading (``benchmarks/judged/``), after the scheme's pair
filters (``similarity.pair_filters``). The figures: docs/similarity.md.
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
        "qa": Thresholds(low=0.35, high=0.7),
        "doc": Thresholds(low=0.4, high=0.8),
        "question": Thresholds(low=0.0, high=0.7),
    }
)
"""Scheme name (``qa``: answers to one question, ``doc``: sentences of one document,
``question``: a group of questions people already judged similar, so only near-duplicates are
dropped) → ``Thresholds`` under the default variant (``multiset``)."""
