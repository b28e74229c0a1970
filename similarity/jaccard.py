"""Character-level Jaccard similarities: the "rule-based, character-level similarity" of the recipe.

Every variant maps a text to a *profile*, a ``frozenset`` of string tokens, and scores a pair
by plain set Jaccard of the profiles::

    J(A, B) = |A ∩ B| / |A ∪ B| = |A ∩ B| / (|A| + |B| - |A ∩ B|),   J(∅, ∅) = 1

Only letters and digits count (``str.isalnum`` after ``normalise`` and ``casefold``), so
punctuation, whitespace and letter case are ignored. Variants (``c_A(x)`` = count of ``x``):

- ``set``:      A = distinct characters.  J = |A ∩ B| / |A ∪ B|.
- ``multiset``: A = {(x, k) : 1 <= k <= c_A(x)} (token ``x`` for k = 1, ``x\\0k`` after), so
  |A ∩ B| = Σ min(c_A, c_B) and |A ∪ B| = Σ max(c_A, c_B):
  J = Σ min(c_A(x), c_B(x)) / Σ max(c_A(x), c_B(x)).
- ``bigram``:   A = distinct character bigrams (a 1-character text: the character itself).
- ``uni_bigram``: multiset Jaccard over unigrams and bigrams together, i.e. the multiset
  construction above applied to the n characters and n - 1 bigrams of an n-character text.

All are symmetric, in [0, 1] and 1.0 for texts with the same letters/digits sequence.
Because every variant is set Jaccard over its profile, one length bound serves all
(see ``length_bound``), and MinHash estimates every variant directly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from itertools import chain
from operator import add

from similarity.text import _SURROGATES, _require_str

Profile = frozenset


_NOT_ALNUM = re.compile(r"[\W_]+")


def content(text: str) -> str:
    """The letters and digits of ``normalise(text)``, case-folded: what every variant sees.

    ``[\\W_]`` is exactly the complement of ``str.isalnum`` in Python's ``re``. The whitespace
    and control-character steps of ``normalise`` touch no letter or digit, so only its first
    two steps (drop lone surrogates, NFKC) are needed here.
    """
    text = unicodedata.normalize("NFKC", _SURROGATES.sub("", _require_str(text, "text")))
    return _NOT_ALNUM.sub("", text.casefold())


def _numbered(grams: Iterable[str]) -> Profile:
    """Multiset → set: the k-th occurrence of gram g becomes token g (k = 1) or ``g\\0k``."""
    counts: dict[str, int] = {}
    repeats = []
    for gram in grams:
        k = counts.get(gram, 0) + 1
        counts[gram] = k
        if k > 1:
            repeats.append(f"{gram}\0{k}")
    return frozenset(counts).union(repeats)


def _bigrams(chars: str) -> Iterable[str]:
    return map(add, chars, chars[1:])


def _set_profile(chars: str) -> Profile:
    return frozenset(chars)


def _multiset_profile(chars: str) -> Profile:
    return _numbered(chars)


def _bigram_profile(chars: str) -> Profile:
    return frozenset(_bigrams(chars) if len(chars) > 1 else [chars] if chars else [])


def _uni_bigram_profile(chars: str) -> Profile:
    return _numbered(chain(chars, _bigrams(chars)))


VARIANTS: dict[str, Callable[[str], Profile]] = {
    "set": _set_profile,
    "multiset": _multiset_profile,
    "bigram": _bigram_profile,
    "uni_bigram": _uni_bigram_profile,
}
"""Variant name → function from ``content(text)`` to the profile (a frozenset of tokens)."""

DEFAULT_VARIANT = "multiset"
"""The variant ``"default"`` stands for; chosen on labelled STS data (docs/similarity.md)."""


def resolve_variant(variant: str) -> str:
    """Map ``"default"`` to ``DEFAULT_VARIANT``; raise ``ValueError`` for unknown names."""
    name = DEFAULT_VARIANT if variant == "default" else variant
    if name not in VARIANTS:
        raise ValueError(f"variant must be one of {['default', *VARIANTS]}, got {variant!r}")
    return name


def profile(text: str, variant: str = "default") -> Profile:
    """The token set that ``variant`` scores ``text`` by; compute once, compare many times."""
    return VARIANTS[resolve_variant(variant)](content(text))


def jaccard(a: Profile, b: Profile) -> float:
    """Set Jaccard |A ∩ B| / (|A| + |B| - |A ∩ B|) of two profiles; 1.0 when both are empty.

    One correctly rounded float division of two integers; ``length_bound`` relies on that.
    """
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return inter / union if union else 1.0


def length_bound(size_a: int, size_b: int) -> float:
    """Upper bound on ``jaccard`` of profiles with ``size_a`` and ``size_b`` tokens.

    J(A, B) <= min(|A|, |B|) / max(|A|, |B|) because |A ∩ B| <= min and |A ∪ B| >= max.
    For ``set`` |A| is the number of distinct characters, for ``multiset`` the number of
    letters/digits, for ``bigram`` the number of distinct bigrams, for ``uni_bigram``
    2n - 1 for n letters/digits. Both sides are one correctly rounded division of integers and
    rounding is monotone, so ``jaccard(a, b) <= length_bound(len(a), len(b))`` holds for the
    floats too: a pair whose bound is below ``low`` can be skipped without scoring it.
    """
    small, big = sorted((size_a, size_b))
    return small / big if big else 1.0


def score(a: str, b: str, variant: str = "default") -> float:
    """Similarity of ``a`` and ``b`` in [0, 1] under ``variant``: the reference definition."""
    _require_str(a, "a")
    _require_str(b, "b")
    make = VARIANTS[resolve_variant(variant)]
    return jaccard(make(content(a)), make(content(b)))
