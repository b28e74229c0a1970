"""The capped pairs of a big group without scoring or holding its n(n - 1)/2 pairs.

With ``--max_pairs_per_group`` = c, a group keeps the c pairs with the smallest key
``(content_hash(seed, text_a, text_b), text_a, text_b)`` among its *passing* pairs: admitted
(``low <= score < high``) and dropped by no pair filter (``CapPairsPerGroup`` after
``FilterPairs``). Scoring every pair first holds all of them: a 3,000-question group is
4.5 M rows (1.5-2.9 GB, over 180 s). When every active rule is pairwise (decided by the two
texts alone, ``PAIRWISE_RULES``), the same c pairs come out of one pass over the pair hashes
(``hashing.pair_hash_rows``, row by row) holding O(n + c):

    for each row i, the pairs (i, j > i) in ascending key: while fewer than c pairs passed,
    score every pair; afterwards score a pair only while its key is below the largest key of
    the c best passing pairs so far (a max-heap), which a passing pair then replaces.

A pair left unscored has a key above c passing pairs already seen, so it cannot be among the
final c: the kept pairs are exactly the old path's. For N pairs of which a share p pass, about
(c / p) · (1 + ln(N p / c)) pairs are scored (a pair is scored when it is among the c / p
smallest keys seen so far); the work left is the N blake2b digests (~0.45 µs each).

How the pipeline counts a bounded group (``bounded_group_rows``): ``candidate_pairs_scored`` and
``pairs_admitted`` count the pairs scored; the admitted pairs a rule drops are passed on as pair
rows, so ``FilterPairs`` drops, counts (``pairs_dropped_<rule>``) and audits them as for any
group; passing pairs pushed out of the heap by better ones count in
``pairs_over_group_cap_dropped``; the pairs never scored count in ``pairs_skipped_by_group_cap``
(not admitted pairs: their score is unknown). So ``pair_accounting`` still balances.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from apache_beam.metrics import Metrics

from pipelines.hashing import pair_hash_rows
from pipelines.io import NAMESPACE
from similarity.candidates import Pair
from similarity.jaccard import jaccard, profile
from similarity.pair_filters import GroupView, first_drop
from similarity.schemes import Thresholds

if TYPE_CHECKING:
    from pipelines.transforms import ScoringConfig, SentenceGroup

PAIRWISE_RULES = frozenset({"near_copy", "contained_copy", "enumeration_sibling",
                            "number_mismatch", "few_shared_words"})
"""Rules of ``similarity.pair_filters`` that look at the two texts only. Not pairwise:
``template_sibling`` (frame counts over all admitted pairs of the group) and ``boilerplate``
(sentence counts over the whole input, known only after every group is split); with either
active, or a rule not listed here, a group takes the old path."""

MIN_PAIRS_PER_CAP = 1000
"""A capped group takes the bounded path when it has more than this many pairs per kept pair:
below, the old path holds at most 1,000 × cap rows (20,000 at the default cap of 20: a few
MiB), and its counters keep counting every pair (real question groups are tens of texts)."""


class CappedPairs(NamedTuple):
    """What ``capped_pairs`` found: ``kept`` (at most cap, ascending key) and ``dropped``
    (admitted, dropped by a rule) as ``(i, j, score)``; pairs ``scored``, ``admitted``,
    and ``evicted`` (passed, then pushed out by c pairs of smaller keys)."""

    kept: list[Pair]
    dropped: list[Pair]
    scored: int
    admitted: int
    evicted: int


def capped_pairs(sentences: Sequence[str], cap: int, seed: int, thresholds: Thresholds,
                 variant: str, rules: Sequence[str]) -> CappedPairs:
    """The ``cap`` passing pairs (i < j) of the sorted, distinct ``sentences`` with the
    smallest ``(content_hash(seed, sentences[i], sentences[j]), i, j)``, scored as
    ``similarity.admitted_pairs`` scores them (``jaccard`` of the ``variant`` profiles) and
    judged by the pairwise ``rules`` (module docstring). Memory O(n + cap + dropped). Raises
    ``ValueError`` for a cap below 1."""
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    profiles = [profile(s, variant) for s in sentences]
    view = GroupView()
    heap: list[tuple[int, int, int, float]] = []  # (-hash, -i, -j, score): the largest key first
    dropped: list[Pair] = []
    scored = admitted = evicted = 0
    for i, hashes in enumerate(pair_hash_rows(seed, sentences)):
        if len(heap) == cap:
            ahead = np.flatnonzero(hashes <= -heap[0][0])
        else:
            ahead = np.arange(len(hashes))
        ahead = ahead[np.argsort(hashes[ahead], kind="stable")]
        for key_hash, k in zip(hashes[ahead].tolist(), ahead.tolist()):
            j = i + 1 + k
            if len(heap) == cap and (-key_hash, -i, -j) <= heap[0][:3]:
                break  # this and every later key of the row is above the cap-th best
            value = jaccard(profiles[i], profiles[j])
            scored += 1
            if not thresholds.admits(value):
                continue
            admitted += 1
            if rules and first_drop(sentences[i], sentences[j], view, rules) is not None:
                dropped.append((i, j, value))
                continue
            heapq.heappush(heap, (-key_hash, -i, -j, value))
            if len(heap) > cap:
                heapq.heappop(heap)
                evicted += 1
    kept = [(-i, -j, value) for _, i, j, value in sorted(heap, reverse=True)]
    return CappedPairs(kept, dropped, scored, admitted, evicted)


def takes_bounded_path(n: int, config: ScoringConfig) -> bool:
    """Whether a group of ``n`` distinct sentences is capped with ``capped_pairs``: a cap is
    set, the group has more than ``MIN_PAIRS_PER_CAP`` pairs per kept pair, every rule is in
    ``PAIRWISE_RULES``, there is no cross-text rule (QA), and the old path would score every
    pair (``low <= 0`` or at most ``lsh_cutoff`` sentences: the LSH path may miss pairs, and
    its misses depend on how the group is cut into blocks)."""
    cap = config.max_pairs_per_group
    return (cap > 0 and n * (n - 1) // 2 > MIN_PAIRS_PER_CAP * cap
            and set(config.pair_filters) <= PAIRWISE_RULES and not config.cross_text_only
            and (config.low <= 0 or n <= config.lsh_cutoff))


def bounded_group_rows(group: SentenceGroup, config: ScoringConfig) -> Iterator[dict[str, Any]]:
    """Pair rows of a group that ``takes_bounded_path``: the admitted pairs a rule drops (for
    ``FilterPairs`` to count and audit), then the kept pairs; counted as the module docstring
    says, as one ``pair_task``."""
    n = len(group.sentences)
    found = capped_pairs(group.sentences, config.max_pairs_per_group, config.seed,
                         Thresholds(config.low, config.high), config.variant, config.pair_filters)
    for name, value in (("pair_tasks", 1), ("candidate_pairs_scored", found.scored),
                        ("pairs_admitted", found.admitted),
                        ("pairs_over_group_cap_dropped", found.evicted),
                        ("pairs_skipped_by_group_cap", n * (n - 1) // 2 - found.scored)):
        Metrics.counter(NAMESPACE, name).inc(value)
    for i, j, value in found.dropped + found.kept:
        yield {"text_a": group.sentences[i], "text_b": group.sentences[j], "score": value,
               "scheme": config.scheme, "group_id": group.group_id}
