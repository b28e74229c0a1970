"""The similarity core: normalisation, sentence splitting, Jaccard variants, thresholds, pairs.

Pure Python (no Beam, no torch), shared by every pipeline and test::

    from similarity import split_sentences, score, admitted_pairs, SCHEMES
"""

from similarity.candidates import LSH_CUTOFF, LSHConfig, admitted_pairs
from similarity.jaccard import DEFAULT_VARIANT, VARIANTS, length_bound, profile, score
from similarity.schemes import SCHEMES, Thresholds
from similarity.text import (
    DEFAULT_FILTERS,
    FILTER_RULES,
    Filters,
    normalise,
    split_sentences,
    split_with_stats,
)

__all__ = [
    "DEFAULT_FILTERS",
    "DEFAULT_VARIANT",
    "FILTER_RULES",
    "LSH_CUTOFF",
    "LSHConfig",
    "SCHEMES",
    "VARIANTS",
    "Filters",
    "Thresholds",
    "admitted_pairs",
    "length_bound",
    "normalise",
    "profile",
    "score",
    "split_sentences",
    "split_with_stats",
]
