"""Admitted pairs of one group of sentences: brute force, exact (filtered), MinHash LSH.

All three methods score a pair with ``jaccard`` on profiles computed once per sentence, which is
exactly ``score()`` of the two sentences; they differ only in which pairs they score.

- ``brute``: every pair i < j. The reference.
- ``exact``: PPJoin-style (Chaudhuri et al. 2006; Bayardo et al. 2007; Xiao et al.
  2008). Tokens are relabelled by their rank in the group, rarest first; sentences are visited
  in order of profile size, and a pair (y earlier, x current, |y| <= |x|) is scored only when

  1. the length bound holds: ``length_bound(|y|, |x|) >= low`` (see ``jaccard.length_bound``);
     (y earlier in size order means |y| <= |x|, so the bound is |y| / |x|);
  2. the *probe prefix* of x (its first |x| - floor(t·|x|) + 1 tokens) shares a token with the
     *index prefix* of y (its first |y| - floor(t'·|y|) + 1 tokens), t = low - 1e-9,
     t' = 2t / (1 + t);
  3. the *positional filter* passes: when the token at position i of x (0-based, rank order)
     meets the token at position j of y, the overlap can be at most (shared tokens met so far)
     + min(|x| - i, |y| - j); below t/(1 + t)·(|x| + |y|) the pair is ruled out for good.

  (2) is sound: J(x, y) >= t means o = |x ∩ y| >= t·|x ∪ y|, so o >= t·|x| and, because
  o (1 + t) >= t (|x| + |y|) >= 2t·|y|, o >= t'·|y|. Two sets that share at least β tokens share
  one among their first |x| - β + 1 and |y| - β + 1 tokens under any global order; take
  β = ceil(max(t·|x|, t'·|y|)), which the floors above never exceed. (3) is sound because every
  shared token ranked before the current one lies in both prefixes, so it has been counted, and
  at most min(|x| - i - 1, |y| - j - 1) shared tokens can follow. The 1e-9 margin covers a
  ratio whose float value rounds up to ``low``. The surviving pairs' overlaps are then counted
  exactly in NumPy (``_overlaps``) and only pairs with ``o / (|x| + |y| - o) >= low`` (the
  same correctly rounded division as ``jaccard``) are scored. Output equals ``brute``.
  Memory: the prefix matches are made for blocks of x of about ``_MATCHES_PER_BLOCK``
  matches and the overlaps counted in runs of as many tokens, so the peak is O(that + the
  group's tokens), not O(matches), which grows as n² (12,000 real sentences: 126 MiB).
- ``lsh``: MinHash signatures (``minhash_signatures``, equal to datasketch's seeded
  ``MinHash``) banded with the bands × rows datasketch's ``MinHashLSH`` picks for a threshold
  below ``low`` (``LSHConfig``) propose candidates; each is verified with the exact score, so
  there are no false positives, only (rare) misses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat

import numpy as np

from similarity.jaccard import Profile, jaccard, profile
from similarity.schemes import Thresholds

LSH_CUTOFF = 1000
"""``method="auto"`` uses the LSH path for groups with more sentences than this."""

_PREFIX_MARGIN = 1e-9
_TOKENS_PER_CHUNK = 4096  # (num_perm, chunk) uint32 products stay in cache
_TABLE_CELLS = 1 << 24
_MATCHES_PER_BLOCK = 1 << 20  # prefix matches of one block of the exact path (~8 MiB/array)
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
    margin: float = 0.1
    min_threshold: float = 0.1
    weights: tuple[float, float] = (0.3, 0.7)


Pair = tuple[int, int, float]


def _relabel(profiles: list[Profile]) -> list[Profile]:
    """Replace each token by an int: its rank by (frequency in the group, token), rarest first,
    the global order prefix filtering needs. A bijection on the group's tokens, so every
    Jaccard value is unchanged, and int sets intersect about twice as fast as str sets.
    """
    frequency = Counter(chain.from_iterable(profiles))
    vocabulary = sorted(frequency, key=lambda t: (frequency[t], t))
    rank = {token: r for r, token in enumerate(vocabulary)}
    return [frozenset(map(rank.__getitem__, p)) for p in profiles]


Labels = np.ndarray | None
"""(k, n) int array: a pair is a candidate only when its two sentences differ in every row."""


def _separated(labels: Labels, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of the pairs (x_k, y_k) whose labels differ in every row of ``labels``."""
    if labels is None:
        return np.ones(len(x), dtype=bool)
    return (labels[:, x] != labels[:, y]).all(axis=0)


def _pairs_brute(profiles: list[Profile], labels: Labels = None) -> Iterator[tuple[int, int]]:
    """Every pair (i, j), i < j, that ``labels`` allows, row by row."""
    n = len(profiles)
    for i in range(n - 1):
        partners = np.arange(i + 1, n)
        partners = partners[_separated(labels, np.full(len(partners), i), partners)]
        yield from zip(repeat(i), partners.tolist())


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(s, s + c)`` for each ``s``, ``c`` of ``starts``, ``counts``."""
    return np.arange(int(counts.sum())) + np.repeat(starts - (np.cumsum(counts) - counts), counts)


def _overlaps(
    x: np.ndarray,
    y: np.ndarray,
    sizes: np.ndarray,
    owner: np.ndarray,
    tokens: np.ndarray,
    width: int,
) -> np.ndarray:
    """|x_k ∩ y_k| for pairs sorted by x: each token of y_k is looked up in a boolean
    (sentence, token) table of a block of sentences holding x_k, at most _TABLE_CELLS cells.
    ``owner``/``tokens``: sentence and token of every token occurrence, sentence by sentence.
    """
    pair = np.repeat(np.arange(len(y)), sizes[y])
    first_token = np.cumsum(sizes) - sizes
    token = tokens[_ranges(first_token[y], sizes[y])]
    host = x[pair]
    hit = np.empty(len(pair), dtype=bool)
    block = max(1, _TABLE_CELLS // width)
    for low in range(0, len(sizes), block):
        high = min(low + block, len(sizes))
        start, stop = np.searchsorted(host, [low, high])
        if start == stop:
            continue
        table = np.zeros((high - low, width), dtype=bool)
        occurrences = slice(first_token[low], first_token[high - 1] + sizes[high - 1])
        table[owner[occurrences] - low, tokens[occurrences]] = True
        hit[start:stop] = table[host[start:stop] - low, token[start:stop]]
    return np.bincount(pair, weights=hit, minlength=len(y)).astype(np.int64)


def _pairs_exact(
    profiles: list[Profile], low: float, labels: Labels = None
) -> Iterator[tuple[int, int]]:
    """Pairs that pass the length, prefix and positional filters (module docstring), among
    the pairs ``labels`` allows.

    Vectorised over the whole group: every (probe-prefix token of x, index-prefix token of y)
    match with y earlier in size order and within the length bound is one row; a pair
    survives when the positional filter passes at each of its matches, taken in rank order
    (the k-th match, 0-based, has k shared tokens before it).
    """
    n = len(profiles)
    sizes = np.fromiter(map(len, profiles), dtype=np.int64, count=n)
    order = np.argsort(sizes, kind="stable")
    empty = order[: np.count_nonzero(sizes == 0)]
    first, second = (empty[k] for k in np.triu_indices(len(empty), 1))
    keep = _separated(labels, first, second)
    yield from zip(first[keep].tolist(), second[keep].tolist())
    step = np.empty(n, dtype=np.int64)  # position of each sentence in the visiting order
    step[order] = np.arange(n)
    total = int(sizes.sum())
    tokens = np.fromiter(chain.from_iterable(profiles), dtype=np.int64, count=total)
    owner = np.repeat(np.arange(n), sizes)
    width = int(tokens.max(initial=0)) + 1
    tokens = np.sort(owner * width + tokens) % width  # each sentence's tokens in rank order
    first_token = np.cumsum(sizes) - sizes
    position = np.arange(total) - np.repeat(first_token, sizes)
    t = low - _PREFIX_MARGIN
    t_index = 2 * t / (1 + t)
    probe = position < (sizes - np.floor(t * sizes).astype(np.int64) + 1)[owner]
    index_size = sizes - np.floor(t_index * sizes).astype(np.int64) + 1
    index = np.flatnonzero(position < index_size[owner])
    index = index[np.argsort(tokens[index], kind="stable")]
    index_tokens = tokens[index]
    probe = np.flatnonzero(probe)
    first = np.searchsorted(index_tokens, tokens[probe], side="left")
    counts = np.searchsorted(index_tokens, tokens[probe], side="right") - first
    for block in _match_blocks(owner[probe], counts):
        rows = np.repeat(probe[block], counts[block])
        matches = index[_ranges(first[block], counts[block])]
        x, y = owner[rows], owner[matches]
        keep = (step[y] < step[x]) & (sizes[y] / sizes[x] >= low) & _separated(labels, x, y)
        rows, matches, x, y = rows[keep], matches[keep], x[keep], y[keep]
        code = x * n + y
        if not len(code):
            continue
        by_pair = np.argsort(code, kind="stable")  # rows in (x, rank) order: ranks stay sorted
        code, x, y = code[by_pair], x[by_pair], y[by_pair]
        i, j = position[rows[by_pair]], position[matches[by_pair]]
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        shared_before = np.arange(len(code)) - np.repeat(starts, np.diff(np.r_[starts, len(code)]))
        bound = shared_before + np.minimum(sizes[x] - i, sizes[y] - j)
        passes = bound >= t / (1 + t) * (sizes[x] + sizes[y])
        x, y = np.divmod(code[starts[np.logical_and.reduceat(passes, starts)]], n)
        for run in _runs((np.cumsum(sizes[y]) - sizes[y]) // _MATCHES_PER_BLOCK):
            xs, ys = x[run], y[run]  # about _MATCHES_PER_BLOCK tokens of y: _overlaps' arrays
            overlap = _overlaps(xs, ys, sizes, owner, tokens, width)
            admitted = overlap / (sizes[xs] + sizes[ys] - overlap) >= low  # jaccard >= low
            yield from zip(ys[admitted].tolist(), xs[admitted].tolist())


def _runs(block_ids: np.ndarray) -> list[slice]:
    """Slices of the runs of equal values in the non-decreasing ``block_ids``."""
    bounds = np.r_[np.flatnonzero(np.r_[True, np.diff(block_ids) != 0]), len(block_ids)]
    return [slice(start, stop) for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def _match_blocks(probe_owner: np.ndarray, counts: np.ndarray) -> list[slice]:
    """Slices of the probe rows (sorted by sentence) in whole sentences, each with about
    ``_MATCHES_PER_BLOCK`` prefix matches (``counts`` per row) at most, or one sentence: all
    matches of a pair come from the probe rows of its later sentence x, so blocks of x are
    independent, and the peak memory is O(_MATCHES_PER_BLOCK + the matches of one sentence)
    instead of O(all matches), which grows as n² in a big group of similar sentences."""
    new_sentence = np.r_[True, probe_owner[1:] != probe_owner[:-1]]
    matches_before = np.cumsum(counts) - counts
    sentence_start = np.maximum.accumulate(np.where(new_sentence, matches_before, 0))
    return _runs(sentence_start // _MATCHES_PER_BLOCK)


@lru_cache(maxsize=64)
def _bands(threshold: float, num_perm: int, weights: tuple[float, float]) -> tuple[int, int]:
    """(bands, rows) that datasketch's ``MinHashLSH`` chooses for this threshold and weights."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return lsh.b, lsh.r


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix datasketch applies before its permutations."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def minhash_signatures(profiles: list[Profile], config: LSHConfig) -> np.ndarray:
    """MinHash signatures, shape (n, num_perm), of profiles whose tokens are ints < 2^32.

    Equal to ``datasketch.MinHash.bulk(..., num_perm, seed, hashfunc=int)[k].hashvalues``
    (scheme ``affine32``: h -> a·fmix32(h) + b mod 2^32 with datasketch's seeded a, b, minimum
    over the tokens), but computed for the whole group in a few NumPy operations instead of
    one Python object per sentence. An empty profile keeps the all-2^32-1 empty signature.
    """
    sizes = np.fromiter(map(len, profiles), dtype=np.int64, count=len(profiles))
    tokens = np.fromiter(chain.from_iterable(profiles), dtype=np.uint32, count=int(sizes.sum()))
    return _signatures(tokens, sizes, config)


def _signatures(tokens: np.ndarray, sizes: np.ndarray, config: LSHConfig) -> np.ndarray:
    """``minhash_signatures`` of the profiles whose uint32 tokens, sentence after sentence,
    are ``tokens`` and whose sizes are ``sizes``."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=config.num_perm, seed=config.seed, scheme="affine32").permutations
    mixed = _fmix32(tokens)[None, :]
    a, b = a[:, None], b[:, None]
    signatures = np.full((len(sizes), config.num_perm), np.uint32(0xFFFFFFFF), np.uint32)
    ends = np.cumsum(sizes)
    rows = np.flatnonzero(sizes)
    for chunk in np.array_split(rows, max(1, int(sizes.sum()) // _TOKENS_PER_CHUNK)):
        if not len(chunk):
            continue
        first, last = ends[chunk[0]] - sizes[chunk[0]], ends[chunk[-1]]
        starts = ends[chunk] - sizes[chunk] - first
        # (num_perm, tokens) keeps the reduced axis contiguous: several times faster.
        signatures[chunk] = np.minimum.reduceat(mixed[:, first:last] * a + b, starts, axis=1).T
    return signatures


def _pairs_lsh(
    profiles: list[Profile], low: float, config: LSHConfig, labels: Labels = None
) -> Iterator[tuple[int, int]]:
    """Pairs that share at least one LSH band of their MinHash signatures (of the profiles'
    tokens numbered by their rank in the sorted vocabulary of the group), among the pairs
    ``labels`` allows.

    Bands × rows are what datasketch's ``MinHashLSH`` chooses for the threshold, but the
    bucketing runs in NumPy over the whole group and all bands at once (``MinHashLSH.insert``/
    ``query`` cost about 0.5 ms per sentence in Python): the (band, rows) keys are sorted by
    their first word, the rows sharing it by (band, all words), and every pair within each
    run of equal keys is a candidate. Yields ``(i, j)``, i < j, in sorted order.
    """
    if len(profiles) < 2:
        return
    n = len(profiles)
    sizes = np.fromiter(map(len, profiles), dtype=np.int64, count=n)
    # Tokens as their rank in the sorted vocabulary, straight into one array.
    rank = {token: r for r, token in enumerate(sorted(set().union(*profiles)))}
    tokens = chain.from_iterable(profiles)
    tokens = np.fromiter(map(rank.__getitem__, tokens), dtype=np.uint32, count=int(sizes.sum()))
    signatures = _signatures(tokens, sizes, config)
    bands, rows = _bands(
        max(low - config.margin, config.min_threshold), config.num_perm, config.weights
    )
    # One row per (band, sentence); rows of a band padded to whole uint64 words.
    block = signatures[:, : bands * rows].reshape(n, bands, rows).transpose(1, 0, 2)
    words = -(-rows // 2)
    padded = np.zeros((bands, n, 2 * words), dtype=np.uint32)
    padded[:, :, :rows] = block
    keys = padded.reshape(bands * n, 2 * words).view(np.uint64)
    # Rows sharing their first word (few) are then sorted by (band, all words).
    by_first = np.argsort(keys[:, 0])
    first_words = keys[by_first, 0]
    repeated = np.r_[first_words[1:] == first_words[:-1], False]
    by_key = by_first[repeated | np.r_[False, repeated[:-1]]]
    by_key = by_key[np.lexsort((*keys[by_key].T[::-1], by_key // n))]
    keys = keys[by_key]
    new = np.r_[True, (keys[1:] != keys[:-1]).any(axis=1) | (np.diff(by_key // n) != 0)]
    starts = np.flatnonzero(new)
    ends = np.repeat(np.r_[starts[1:], len(keys)], np.diff(np.r_[starts, len(keys)]))
    later = ends - np.arange(len(keys)) - 1  # rows after this one in its bucket
    first = np.repeat(np.arange(len(keys)), later)
    second = _ranges(np.arange(len(keys)) + 1, later)
    a, b = by_key[first] % n, by_key[second] % n
    code = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
    i, j = np.divmod(code, n)
    small, big = np.minimum(sizes[i], sizes[j]), np.maximum(sizes[i], sizes[j])
    bound = np.divide(small, big, out=np.ones(len(code)), where=big > 0)  # = length_bound
    keep = (bound >= low) & _separated(labels, i, j)
    yield from zip(i[keep].tolist(), j[keep].tolist())


def _labels(
    n_left: int, n_right: int | None, parts: Sequence[int] | None
) -> Labels:
    """The label rows of ``admitted_pairs``' ``right`` (side 0/1) and ``parts`` arguments."""
    n = n_left + (n_right or 0)
    rows = []
    if n_right is not None:
        rows.append(np.repeat([0, 1], [n_left, n_right]))
    if parts is not None:
        if isinstance(parts, str) or len(parts) != n:
            raise ValueError(f"parts must hold one int per sentence ({n}), got {len(parts)}")
        rows.append(np.asarray(parts, dtype=np.int64))
    return np.stack(rows) if rows else None


def _check_texts(sentences: Sequence[str], name: str) -> None:
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError(f"{name} must be a list of str, got {type(sentences).__name__}")
    bad = [k for k, s in enumerate(sentences) if not isinstance(s, str)]
    if bad:
        raise TypeError(f"{name} must be a list of str; {name}[{bad[0]}] is not")


def admitted_pairs(
    sentences: Sequence[str],
    low: float,
    high: float,
    variant: str = "default",
    method: str = "auto",
    *,
    right: Sequence[str] | None = None,
    parts: Sequence[int] | None = None,
    lsh_cutoff: int = LSH_CUTOFF,
    lsh_config: LSHConfig = LSHConfig(),
    stats: dict[str, int] | None = None,
) -> list[Pair]:
    """Pairs ``(i, j, score)`` of ``sentences`` with i < j and ``low <= score < high``.

    ``score`` equals ``score(sentences[i], sentences[j], variant)``; the list is sorted by
    ``(i, j)``. ``method``: ``"exact"`` (equals ``"brute"``), ``"lsh"`` (verified candidates,
    may miss a few pairs), ``"brute"`` (all pairs, the reference) or ``"auto"`` (``"lsh"``
    when there are more than ``lsh_cutoff`` sentences, else ``"exact"``). With ``low <= 0``
    every pair can qualify, so the filtered methods fall back to brute force.

    Restricting the pairs (they are never scored, not scored and dropped):

    - ``right``: a second list; only pairs of one sentence of ``sentences`` (index i) and one
      of ``right`` (index j, into ``right``) are considered: the cross pairs of two blocks.
    - ``parts``: one int label per sentence (of ``sentences`` followed by ``right``); two
      sentences with the same label are never paired, e.g. two sentences of one answer.

    When ``stats`` is a dict, ``stats["pairs_scored"]`` and ``stats["pairs_admitted"]`` are
    incremented (the dict can be reused across groups to accumulate counts).
    """
    _check_texts(sentences, "sentences")
    if right is not None:
        _check_texts(right, "right")
    interval = Thresholds(low, high)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    labels = _labels(len(sentences), None if right is None else len(right), parts)
    texts = [*sentences, *(right or ())]
    if method == "auto":
        method = "lsh" if len(texts) > lsh_cutoff else "exact"
    if low <= 0:
        method = "brute"
    profiles = [profile(s, variant) for s in texts]
    if method != "lsh":  # LSH numbers tokens itself and verifies few pairs
        profiles = _relabel(profiles)
    if method == "brute":
        candidates = _pairs_brute(profiles, labels)
    elif method == "exact":
        candidates = _pairs_exact(profiles, low, labels)
    else:
        candidates = _pairs_lsh(profiles, low, lsh_config, labels)
    shift = len(sentences) if right is not None else 0
    scored = 0
    pairs = []
    for i, j in candidates:
        scored += 1
        value = jaccard(profiles[i], profiles[j])
        if interval.admits(value):
            pairs.append((min(i, j), max(i, j) - shift, value))
    pairs.sort()
    if stats is not None:
        stats["pairs_scored"] = stats.get("pairs_scored", 0) + scored
        stats["pairs_admitted"] = stats.get("pairs_admitted", 0) + len(pairs)
    return pairs
