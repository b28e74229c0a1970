"""Admitted pairs of one group of sentences: brute force, exact (length + prefix filter), LSH.

All three methods score a pair with ``jaccard`` on profiles computed once per sentence, which is
exactly ``score()`` of the two sentences; they differ only in which pairs they score.

- ``brute``: every pair i < j. The reference.
- ``exact``: AllPairs-style. Sentences are visited in order of profile size; a pair is scored
  only when (1) the length bound ``min(|A|,|B|) / max(|A|,|B|) >= low`` holds and (2) the two
  *prefixes* share a token, where a profile's tokens are ordered rarest-first within the group
  and the prefix of a size-s profile has s - floor(t·s) + 1 tokens, t = low - 1e-9.
  (2) is sound: J(A, B) >= t implies |A ∩ B| >= t·|A ∪ B| >= t·|A| >= floor(t·|A|) =: β, and
  two sets sharing β tokens share one among their first |A| - β + 1 and |B| - β + 1 tokens
  under any global order (Chaudhuri et al. 2006; Bayardo et al. 2007). The 1e-9 margin covers
  a float ratio rounded up to ``low``. Output equals ``brute``.
- ``lsh``: datasketch ``MinHash`` (seeded) + ``MinHashLSH`` with a threshold below ``low``
  propose candidates; each is verified with the exact score, so there are no false positives,
  only (rare) misses.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from similarity.jaccard import Profile, jaccard, length_bound, profile
from similarity.schemes import Thresholds

LSH_CUTOFF = 2000
"""``method="auto"`` uses the LSH path for groups with more sentences than this."""

_PREFIX_MARGIN = 1e-9
METHODS = ("auto", "brute", "exact", "lsh")


@dataclass(frozen=True)
class LSHConfig:
    """MinHash LSH settings; must be identical on all workers for reproducible output.

    The LSH threshold is ``max(low - margin, min_threshold)``; datasketch picks bands × rows
    for it with false-positive/false-negative ``weights``. Candidates are verified exactly, so
    a lower threshold only costs time, never correctness.
    """

    num_perm: int = 128
    seed: int = 1
    margin: float = 0.15
    min_threshold: float = 0.1
    weights: tuple[float, float] = (0.3, 0.7)


Pair = tuple[int, int, float]


def _pairs_brute(profiles: list[Profile]) -> Iterator[tuple[int, int]]:
    n = len(profiles)
    return ((i, j) for i in range(n) for j in range(i + 1, n))


def _pairs_exact(profiles: list[Profile], low: float) -> Iterator[tuple[int, int]]:
    """Pairs that may reach ``low``: length bound and prefix filter (module docstring)."""
    sizes = [len(p) for p in profiles]
    order = sorted(range(len(profiles)), key=sizes.__getitem__)
    empty = [k for k in order if sizes[k] == 0]
    yield from ((i, j) for a, i in enumerate(empty) for j in empty[a + 1 :])
    frequency = Counter(token for p in profiles for token in p)
    rank = {token: r for r, token in enumerate(sorted(frequency, key=lambda t: (frequency[t], t)))}
    index: defaultdict[int, list[int]] = defaultdict(list)
    t = low - _PREFIX_MARGIN
    for x in order[len(empty) :]:
        size = sizes[x]
        tokens = sorted(rank[token] for token in profiles[x])
        candidates: set[int] = set()
        for r in tokens[: size - math.floor(t * size) + 1]:
            postings = index[r]
            candidates.update(postings)
            postings.append(x)
        yield from ((y, x) for y in candidates if length_bound(sizes[y], size) >= low)


def _pairs_lsh(profiles: list[Profile], low: float, config: LSHConfig) -> Iterator[tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    sizes = [len(p) for p in profiles]
    hashes = MinHash.bulk(
        [[token.encode("utf-8") for token in sorted(p)] for p in profiles],
        num_perm=config.num_perm,
        seed=config.seed,
    )
    lsh = MinHashLSH(
        threshold=max(low - config.margin, config.min_threshold),
        num_perm=config.num_perm,
        weights=config.weights,
    )
    for key, minhash in enumerate(hashes):
        lsh.insert(key, minhash, check_duplication=False)
    for i, minhash in enumerate(hashes):
        for j in lsh.query(minhash):
            if j > i and length_bound(sizes[i], sizes[j]) >= low:
                yield i, j


def admitted_pairs(
    sentences: Sequence[str],
    low: float,
    high: float,
    variant: str = "default",
    method: str = "auto",
    *,
    lsh_cutoff: int = LSH_CUTOFF,
    lsh_config: LSHConfig = LSHConfig(),
    stats: dict[str, int] | None = None,
) -> list[Pair]:
    """Pairs ``(i, j, score)`` of ``sentences`` with i < j and ``low <= score < high``.

    ``score`` equals ``score(sentences[i], sentences[j], variant)``; the list is sorted by
    ``(i, j)``. ``method``: ``"exact"`` (equals ``"brute"``), ``"lsh"`` (verified candidates,
    may miss a few pairs), ``"brute"`` (all pairs, the reference) or ``"auto"`` (``"lsh"``
    when ``len(sentences) > lsh_cutoff``, else ``"exact"``). With ``low <= 0`` every pair can
    qualify, so the filtered methods fall back to brute force. When ``stats`` is a dict,
    ``stats["pairs_scored"]`` and ``stats["pairs_admitted"]`` are incremented (the dict can
    be reused across groups to accumulate counts).
    """
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError(f"sentences must be a list of str, got {type(sentences).__name__}")
    bad = [k for k, s in enumerate(sentences) if not isinstance(s, str)]
    if bad:
        raise TypeError(f"sentences must be a list of str; sentences[{bad[0]}] is not")
    interval = Thresholds(low, high)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    profiles = [profile(s, variant) for s in sentences]
    if method == "auto":
        method = "lsh" if len(sentences) > lsh_cutoff else "exact"
    if low <= 0:
        method = "brute"
    if method == "brute":
        candidates = _pairs_brute(profiles)
    elif method == "exact":
        candidates = _pairs_exact(profiles, low)
    else:
        candidates = _pairs_lsh(profiles, low, lsh_config)
    scored = 0
    pairs = []
    for i, j in candidates:
        scored += 1
        value = jaccard(profiles[i], profiles[j])
        if interval.admits(value):
            pairs.append((min(i, j), max(i, j), value))
    pairs.sort()
    if stats is not None:
        stats["pairs_scored"] = stats.get("pairs_scored", 0) + scored
        stats["pairs_admitted"] = stats.get("pairs_admitted", 0) + len(pairs)
    return pairs
