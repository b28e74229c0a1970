"""Shared PTransforms: parse + validate with dead letters, group → sentences → pairs, dedup.

All splitting and scoring is ``similarity``'s (``split_with_stats``, ``admitted_pairs``); this
module only distributes it. Counters (Beam ``Metrics``, namespace ``simpairs``) are named in
``COUNTERS``; ``rejected_<reason>`` and ``sentences_dropped_<rule>`` exist per reason/rule.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

import similarity
from pipelines.filtering import FilterPairs, WriteAudits, sentence_key
from pipelines.group_cap import bounded_group_rows, takes_bounded_path
from pipelines.hashing import content_hash
from pipelines.io import NAMESPACE, REJECTED, Progress
from pipelines.schema import (
    Group,
    Rejected,
    dead_letter,
    encodable,
    json_size,
    too_large_detail,
)
from similarity.pair_filters import resolve_rules, unmarked
from similarity.text import DEFAULT_FILTERS, QUESTION_FILTERS, SCHEME_FILTERS, TOO_LONG, Filters

ACCEPTED = "accepted"
FANOUT = "fanout"
SENTENCE_KEYS = "sentence_keys"
COPY_LINKS = "copy_links"
COPIED_ANSWERS = "copied_answers"
"""Audit name of the QA copies join: ``_dropped-copied_answers.jsonl`` holds a seeded sample of
the sentence pairs (``copy_links``) that made two answers one."""
COUNTERS = {
    "records_read": "input lines/rows read (accepted + rejected)",
    "records_accepted": "records that passed validation",
    "rejected_<reason>": "records dead-lettered for that reason (schema.REASONS)",
    "texts": "answers/documents/texts in accepted records",
    "texts_without_sentences": "valid texts that kept no sentence after the filters",
    "texts_with_lone_surrogates": "texts whose lone surrogates were removed (schema.encodable)",
    "sentences": "sentences kept by the filters",
    "sentences_dropped_<rule>": "sentences that filter rule removed (similarity.FILTER_RULES)",
    "duplicate_sentences": "repeats of a sentence inside one group, scored once",
    "groups_fanned_out": "groups cut into blocks scored as separate tasks",
    "pair_tasks": "scoring tasks (one per small group, one per block pair of a big group)",
    "candidate_pairs_scored": "sentence pairs whose similarity was computed",
    "copied_answers_joined": "QA answers joined to another answer they share a sentence with",
    "pairs_admitted": "pairs with low <= score < high (QA: across answers)",
    "pairs_dropped_<rule>": "admitted pairs that pair filter dropped (similarity.pair_filters)",
    "pairs_over_group_cap_dropped": "admitted pairs beyond --max_pairs_per_group in a group",
    "pairs_skipped_by_group_cap": "pairs of a big capped group never scored (pipelines.group_cap)",
    "duplicate_pairs_dropped": "admitted pairs already emitted by another group",
    "pairs_written": "distinct pairs written",
}


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


class _ParseRecord(beam.DoFn):
    """``(source, line_no, payload)`` → ``Group`` or a dead letter on ``REJECTED``.

    ``payload`` is a raw JSONL line (bytes) or a Parquet row (dict); ``to_group`` validates the
    decoded object and raises ``Rejected`` for anything unusable. Any other exception while
    decoding or validating one record dead-letters that record as ``invalid_record`` (with the
    exception's type and message): one record never fails the job.
    """

    def __init__(self, to_group: Callable[[dict[str, Any]], Group], max_record_bytes: int):
        self.to_group = to_group
        self.max_record_bytes = max_record_bytes

    def process(self, element: tuple[str, int, bytes | dict[str, Any]]):
        source, line_no, payload = element
        size = 0
        try:
            size = len(payload) if isinstance(payload, bytes) else json_size(payload)
            group, repaired = encodable(self.to_group(self._decode(payload, size)))
        except Exception as err:  # one bad record must not fail the job: dead-letter it
            rejected = err if isinstance(err, Rejected) else Rejected(
                "invalid_record", f"{type(err).__name__}: {err}")
            counter(f"rejected_{rejected.reason}").inc()
            record = payload if isinstance(payload, bytes) else json.dumps(payload, default=str)
            yield beam.pvalue.TaggedOutput(
                REJECTED,
                dead_letter(source, line_no, rejected.reason, rejected.detail, record, size),
            )
            return
        counter("records_accepted").inc()
        counter("texts_with_lone_surrogates").inc(repaired)
        yield group

    def _decode(self, payload: bytes | dict[str, Any], size: int) -> dict[str, Any]:
        if size > self.max_record_bytes:
            raise Rejected("too_large", too_large_detail(size, self.max_record_bytes))
        if isinstance(payload, dict):
            return payload
        if not payload.strip():
            raise Rejected("blank_line", "the line is empty")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as err:
            raise Rejected("invalid_utf8", f"{err.reason} at byte {err.start}") from None
        try:
            obj = json.loads(text, strict=False)
        except ValueError as err:  # JSONDecodeError, or an integer of over 4,300 digits
            raise Rejected("invalid_json", str(err)) from None
        except RecursionError:
            raise Rejected("invalid_json", "nested too deeply") from None
        if not isinstance(obj, dict):
            raise Rejected("not_object", f"JSON {type(obj).__name__}, expected an object")
        return obj


class ParseRecords(beam.PTransform):
    """Raw records → ``(groups, dead_letters)`` using ``to_group`` (e.g. ``schema.qa_group``)."""

    def __init__(self, to_group: Callable[[dict[str, Any]], Group], max_record_bytes: int):
        super().__init__()
        self.to_group = to_group
        self.max_record_bytes = max_record_bytes

    def expand(self, raw):
        parsed = raw | "Validate" >> beam.ParDo(
            _ParseRecord(self.to_group, self.max_record_bytes)
        ).with_outputs(REJECTED, main=ACCEPTED)
        return parsed[ACCEPTED], parsed[REJECTED]


class SentenceGroup(NamedTuple):
    """Distinct sentences of a group, sorted, with the indices of the texts each came from."""

    group_id: str
    sentences: tuple[str, ...]
    owners: tuple[tuple[int, ...], ...]


class PairTask(NamedTuple):
    """Score ``left`` against itself (``right`` is None) or every left × right sentence pair.

    ``left_parts``/``right_parts``: the ``answer_parts`` label of each sentence (QA rule: only
    sentences of different labels pair), ``None`` when every pair may be scored.
    """

    group_id: str
    method: str
    left: tuple[str, ...]
    left_parts: tuple[int, ...] | None
    right: tuple[str, ...] | None
    right_parts: tuple[int, ...] | None


@dataclass(frozen=True)
class ScoringConfig:
    """How groups become pairs: thresholds, variant, sizes, and the QA cross-text rule.

    ``split_texts=False`` takes every text as one sentence (questions; see ``whole_text``).
    ``pair_copied_answers``: under the QA rule, also pair sentences of answers that share a
    sentence (see ``answer_parts``). ``max_pairs_per_group > 0`` keeps, per group, the
    admitted pairs with the smallest ``content_hash(seed, text_a, text_b)`` (see
    ``CapPairsPerGroup``). ``pair_filters``: the rules of ``similarity.pair_filters`` applied
    to admitted pairs (``FilterPairs``), with ``boilerplate_groups`` the boilerplate rule's
    threshold.
    ``check()`` raises ``ValueError`` naming the command-line option of a bad value.
    """

    scheme: str
    low: float
    high: float
    variant: str
    max_len: int
    lsh_cutoff: int
    fanout_block: int
    cross_text_only: bool
    split_texts: bool = True
    pair_copied_answers: bool = False
    max_pairs_per_group: int = 0
    seed: int = 0
    pair_filters: tuple[str, ...] = ()
    boilerplate_groups: int = 3

    def check(self) -> None:
        if not 0.0 <= self.low < self.high:
            raise ValueError(f"--low/--high: need 0 <= low < high, got {self.low}, {self.high}")
        for name, least in (("max_len", 1), ("fanout_block", 1), ("lsh_cutoff", 0),
                            ("max_pairs_per_group", 0), ("boilerplate_groups", 2)):
            if getattr(self, name) < least:
                raise ValueError(f"--{name} must be >= {least}, got {getattr(self, name)}")
        try:
            similarity.jaccard.resolve_variant(self.variant)
        except ValueError as err:
            raise ValueError(f"--variant: {err}") from None
        try:
            resolve_rules(self.pair_filters)
        except ValueError as err:
            raise ValueError(f"--pair_filters: {err}") from None


def whole_text(text: str, max_len: int,
               filters: Filters = QUESTION_FILTERS) -> tuple[list[str], Counter]:
    """``text`` as one sentence, never cut: ``similarity.normalise``, then the sentence filters.

    Returns ``(sentences, dropped)`` like ``similarity.split_with_stats``: ``[]`` for a blank
    text; a text longer than ``max_len`` characters is dropped as ``too_long``; otherwise the
    first failing rule of ``similarity.text.QUESTION_FILTERS`` (``too_short`` below 3
    letters/digits: ``能贷不能`` is a real question, ...) drops it.
    """
    sentence = similarity.normalise(text)
    if not sentence:
        return [], Counter()
    if len(sentence) > max_len:
        rule = TOO_LONG
    else:
        rule = filters.rejection(sentence)
    return ([sentence], Counter()) if rule is None else ([], Counter({rule: 1}))


def split_group(group: Group, max_len: int, split_texts: bool = True,
                filters: Filters = DEFAULT_FILTERS) -> SentenceGroup:
    """Split every text of ``group`` with ``similarity.split_with_stats`` (or take it whole,
    ``whole_text``, when ``split_texts`` is False), applying ``filters``; count what happens."""
    owners: dict[str, set[int]] = {}
    split = similarity.split_with_stats if split_texts else whole_text
    for index, text in enumerate(group.texts):
        sentences, dropped = split(text, max_len, filters)
        counter("texts").inc()
        for rule, count in dropped.items():
            counter(f"sentences_dropped_{rule}").inc(count)
        if not sentences:
            counter("texts_without_sentences").inc()
        counter("sentences").inc(len(sentences))
        for sentence in sentences:
            seen = owners.setdefault(sentence, set())
            if seen:
                counter("duplicate_sentences").inc()
            seen.add(index)
    ordered = sorted(owners)
    return SentenceGroup(
        group.group_id, tuple(ordered), tuple(tuple(sorted(owners[s])) for s in ordered)
    )


def copy_links(group: SentenceGroup) -> Iterator[tuple[int, int, str, str]]:
    """``(a, b, sentence of a, sentence of b)`` for every sentence of answer ``b`` whose
    ``similarity.pair_filters.unmarked`` text (letters and digits, leading list marker
    removed) first occurred in another answer ``a``: the evidence that ``a`` and ``b`` copy one
    text. A sentence found in several answers links its first answer to each other one."""
    first: dict[str, tuple[int, str]] = {}
    for sentence, owners in zip(group.sentences, group.owners, strict=True):
        answer, seen = first.setdefault(unmarked(sentence), (owners[0], sentence))
        for other in owners:
            if other != answer:
                yield answer, other, seen, sentence


def answer_parts(group: SentenceGroup,
                 links: Iterable[tuple[int, int, str, str]] | None = None) -> tuple[int, ...]:
    """Label of each sentence of ``group`` for the QA rule "pair sentences of different answers
    only": sentences with different labels may pair, sentences with one label may not.

    Two answers that share a sentence (``links``: the group's ``copy_links``) are copies of one
    text (a quoted regulation, a pasted article), not two answers: given ``links`` they are
    joined, and
    so is every answer linked to them by a chain of shared sentences (union-find over answer
    indices); a sentence's label is the smallest answer index of its joined set. Their shared
    sentences are then never paired with the rest of that text, which would be a
    document-scheme pair at the QA threshold. Without ``links`` the label is the one answer a
    sentence came from, and a sentence found in several answers gets a label of its
    own (negative) so it may pair with any sentence.
    """
    if links is None:
        return tuple(own[0] if len(own) == 1 else -1 - k for k, own in enumerate(group.owners))
    root: dict[int, int] = {}

    def find(answer: int) -> int:
        while root.setdefault(answer, answer) != answer:
            answer = root[answer]
        return answer

    for a, b, _, _ in links:
        low, high = sorted((find(a), find(b)))
        root[high] = low
    return tuple(find(owners[0]) for owners in group.owners)


def plan_tasks(group: SentenceGroup, config: ScoringConfig,
               links: Iterable[tuple[int, int, str, str]] | None = None) -> Iterator[PairTask]:
    """One task for a small group; for more than ``fanout_block`` sentences, one task per pair
    of blocks (b blocks → b(b+1)/2 tasks), so a huge group spreads over many workers.

    Every pair (i, j) is scored in exactly one task: the diagonal task of its block, or the
    task of its two blocks, which scores only pairs across them (``score_task``). A task
    holds at most 2 × ``fanout_block`` sentences (bounded memory); the price is that each
    sentence is profiled (and, on the LSH path, MinHashed) in b tasks instead of one. The
    method is chosen by the size of the whole group: ``lsh`` above ``lsh_cutoff``, else
    ``exact``. Under the QA rule the labels of ``answer_parts`` are computed once for the whole
    group, and answers joined as copies are counted (``copied_answers_joined``); ``links``: the
    group's ``copy_links`` when the caller has them already (computed here otherwise).
    """
    n = len(group.sentences)
    if n < 2:
        return
    parts = None
    if config.cross_text_only and config.pair_copied_answers:
        parts = answer_parts(group)
    elif config.cross_text_only:
        parts = answer_parts(group, copy_links(group) if links is None else links)
        answers = {own for owners in group.owners for own in owners}
        counter("copied_answers_joined").inc(len(answers) - len(set(parts)))
    method = "lsh" if n > config.lsh_cutoff else "exact"
    block = config.fanout_block
    if n <= block:
        yield PairTask(group.group_id, method, group.sentences, parts, None, None)
        return
    starts = range(0, n, block)
    for i in starts:
        for j in starts:
            if j < i:
                continue
            yield PairTask(
                group.group_id, method,
                group.sentences[i:i + block], None if parts is None else parts[i:i + block],
                None if i == j else group.sentences[j:j + block],
                None if i == j or parts is None else parts[j:j + block],
            )


class _SplitAndScore(beam.DoFn):
    """Group → sentences → tasks; a group of one task is scored here (pair rows out), the
    block-pair tasks of a fanned-out group go to ``FANOUT`` to be scored elsewhere. A big
    capped group is capped here instead (``group_cap.takes_bounded_path``)."""

    def __init__(self, config: ScoringConfig):
        self.config = config

    def setup(self):
        self.progress = Progress("groups split into sentences")

    def process(self, group: Group):
        self.progress.tick()
        sentence_group = split_group(group, self.config.max_len, self.config.split_texts,
                                     SCHEME_FILTERS[self.config.scheme])
        if "boilerplate" in self.config.pair_filters:
            for sentence in sentence_group.sentences:
                yield beam.pvalue.TaggedOutput(SENTENCE_KEYS, sentence_key(sentence))
        links = None
        if self.config.cross_text_only and not self.config.pair_copied_answers:
            links = list(copy_links(sentence_group))
            for _, _, text_a, text_b in links:
                yield beam.pvalue.TaggedOutput(COPY_LINKS, (COPIED_ANSWERS, {
                    "text_a": min(text_a, text_b), "text_b": max(text_a, text_b),
                    "score": similarity.score(text_a, text_b, self.config.variant),
                    "scheme": self.config.scheme, "group_id": sentence_group.group_id}))
        if takes_bounded_path(len(sentence_group.sentences), self.config):
            yield from bounded_group_rows(sentence_group, self.config)
            return
        tasks = list(plan_tasks(sentence_group, self.config, links))
        counter("pair_tasks").inc(len(tasks))
        if len(tasks) == 1:
            yield from score_task(tasks[0], self.config)
            return
        if tasks:
            counter("groups_fanned_out").inc()
        for task in tasks:
            yield beam.pvalue.TaggedOutput(FANOUT, task)


def score_task(task: PairTask, config: ScoringConfig) -> Iterator[dict[str, Any]]:
    """Admitted pairs of ``task`` as pair rows in canonical order (``text_a < text_b``).

    Only the pairs the task owns are scored: all pairs of ``left`` (diagonal task) or only the
    left × right pairs (block-pair task), and for the QA rule only pairs across answers
    (``similarity.admitted_pairs``' ``right`` and ``parts``).
    """
    parts = None if task.left_parts is None else task.left_parts + (task.right_parts or ())
    stats: dict[str, int] = {}
    pairs = similarity.admitted_pairs(
        task.left, config.low, config.high, config.variant, task.method, right=task.right,
        parts=parts, stats=stats,
    )
    counter("candidate_pairs_scored").inc(stats["pairs_scored"])
    counter("pairs_admitted").inc(len(pairs))
    partners = task.left if task.right is None else task.right
    for i, j, value in pairs:
        text_a, text_b = sorted((task.left[i], partners[j]))
        yield {
            "text_a": text_a,
            "text_b": text_b,
            "score": value,
            "scheme": config.scheme,
            "group_id": task.group_id,
        }


class GroupsToPairs(beam.PTransform):
    """Groups → admitted pair rows, pair filters applied (before the global dedup).

    Small groups are scored where they are split; the block-pair tasks of big groups go
    through a ``Reshuffle`` first so they spread over workers instead of queueing behind one
    element. Only pair rows are joined (``Flatten``), never tasks, so the sentences of small
    groups are not serialised again. Memory per task is O(block) sentences plus the admitted
    pairs: never an n × n matrix.
    """

    def __init__(self, config: ScoringConfig, audit_dir: str | None = None):
        super().__init__()
        self.config = config
        self.audit_dir = audit_dir

    def expand(self, groups):
        local = groups | "SplitAndScore" >> beam.ParDo(_SplitAndScore(self.config)).with_outputs(
            FANOUT, SENTENCE_KEYS, COPY_LINKS, main="pairs"
        )
        if self.audit_dir is not None:
            local[COPY_LINKS] | "AuditCopyLinks" >> WriteAudits(self.config.seed, self.audit_dir)
        fanned = (
            local[FANOUT]
            | "FanOutBigGroups" >> beam.Reshuffle()
            | "ScoreBlockPairs" >> beam.FlatMap(score_task, self.config)
        )
        pairs = (local["pairs"], fanned) | "JoinPairs" >> beam.Flatten()
        if self.config.pair_filters:
            pairs |= "FilterPairs" >> FilterPairs(
                self.config.pair_filters, self.config.boilerplate_groups, self.config.seed,
                local[SENTENCE_KEYS], self.audit_dir,
            )
        if self.config.max_pairs_per_group:
            pairs |= "CapPairsPerGroup" >> CapPairsPerGroup(
                self.config.max_pairs_per_group, self.config.seed
            )
        return pairs


class _SmallestKeys(beam.CombineFn):
    """The ``n`` ``(key, value)`` items with the smallest keys, sorted, and how many were seen."""

    def __init__(self, n: int):
        self.n = n

    def create_accumulator(self):
        return [], 0

    def add_input(self, accumulator, item):
        return self.merge_accumulators([accumulator, ([item], 1)])

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        items = heapq.nsmallest(
            self.n, (i for kept, _ in accumulators for i in kept), key=lambda i: i[0]
        )
        return items, sum(count for _, count in accumulators)

    def extract_output(self, accumulator):
        return accumulator


def _pair_cap_key(row: dict[str, Any], seed: int):
    key = (content_hash(seed, row["text_a"], row["text_b"]), row["text_a"], row["text_b"])
    return row["group_id"], (key, row)


def _capped_rows(keyed) -> Iterator[dict[str, Any]]:
    _, (kept, seen) = keyed
    counter("pairs_over_group_cap_dropped").inc(seen - len(kept))
    for _, row in kept:
        yield row


class CapPairsPerGroup(beam.PTransform):
    """Keep at most ``n`` pair rows per ``group_id``: those with the smallest
    ``content_hash(seed, text_a, text_b)`` (ties by text), so the choice depends on content and
    seed only, never on order or workers. A group with m distinct admitted pairs keeps min(m, n):
    a pair the group gave twice (a duplicated input line) is first kept once, so the copies do
    not take two places under the cap (counted in ``duplicate_pairs_dropped``). A big group
    capped where it is split (``group_cap``) arrives here with at most n rows per input line."""

    def __init__(self, n: int, seed: int = 0):
        super().__init__()
        if n < 1:
            raise ValueError(f"--max_pairs_per_group must be >= 1 to cap, got {n}")
        self.n, self.seed = n, seed

    def expand(self, rows):
        return (
            rows
            | "OncePerGroup" >> DedupPairs(within_group=True)
            | "KeyByGroup" >> beam.Map(_pair_cap_key, self.seed)
            | "SmallestHashes" >> beam.CombinePerKey(_SmallestKeys(self.n))
            | "KeptRows" >> beam.FlatMap(_capped_rows)
        )


class _SmallestGroup(beam.CombineFn):
    """Keep the value with the smallest ``(group_id, ...)`` and count how many were seen."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, accumulator, value):
        best, count = accumulator
        return (value if best is None or value < best else best), count + 1

    def merge_accumulators(self, accumulators):
        best, total = None, 0
        for value, count in accumulators:
            total += count
            if value is not None and (best is None or value < best):
                best = value
        return best, total

    def extract_output(self, accumulator):
        return accumulator


def _pair_key(row: dict[str, Any], within_group: bool):
    texts = (row["text_a"], row["text_b"])
    key = (row["group_id"], *texts) if within_group else texts
    return key, (row["group_id"], row["score"], row["scheme"])


def _distinct_row(keyed, within_group: bool) -> dict[str, Any]:
    key, ((group_id, value, scheme), count) = keyed
    text_a, text_b = key[-2:]
    counter("duplicate_pairs_dropped").inc(count - 1)
    if not within_group:
        counter("pairs_written").inc()
    return {"text_a": text_a, "text_b": text_b, "score": value, "scheme": scheme,
            "group_id": group_id}


class DedupPairs(beam.PTransform):
    """Keep each ``(text_a, text_b)`` once, from the smallest ``group_id`` (deterministic);
    with ``within_group``, each ``(group_id, text_a, text_b)`` once (``CapPairsPerGroup``)."""

    def __init__(self, within_group: bool = False):
        super().__init__()
        self.within_group = within_group

    def expand(self, rows):
        return (
            rows
            | "KeyByPair" >> beam.Map(_pair_key, self.within_group)
            | "KeepFirstGroup" >> beam.CombinePerKey(_SmallestGroup())
            | "ToRow" >> beam.Map(_distinct_row, self.within_group)
        )
