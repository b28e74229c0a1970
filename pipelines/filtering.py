"""The pair filters of ``similarity.pair_filters`` applied to a pipeline's scored pairs.

``FilterPairs`` is the one place every pair pipeline drops pairs by rule: pair rows are grouped
by ``group_id`` (the template rule counts frames per group), each row is kept or counted as
``pairs_dropped_<rule>`` under the first rule that drops it, and a seeded sample of what each
rule dropped (the ``AUDIT_ROWS`` rows with the smallest ``content_hash(seed, "dropped", rule,
text_a, text_b)``) is written to ``DIR/_dropped-<rule>.jsonl`` for auditing. The boilerplate
rule needs a global count: every group's distinct sentences are hashed
(``sentence_key``), counted over the whole input with ``Count.PerElement``, and the keys seen in
at least ``boilerplate_groups`` groups reach the rule as a side input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.hashing import content_hash
from pipelines.io import NAMESPACE, shard_prefix
from pipelines.schema import DROPPED_AUDIT_PREFIX
from similarity.pair_filters import RULES, group_drops

AUDIT_ROWS = 50
DROPPED = "dropped"


def sentence_key(sentence: str) -> int:
    """The 63-bit content hash the boilerplate count is keyed by."""
    return content_hash(0, "sentence", sentence)


def audit_path(output_dir: str, rule: str) -> str:
    """``DIR/_dropped-<rule>.jsonl``."""
    return shard_prefix(output_dir, f"{DROPPED_AUDIT_PREFIX}-{rule}.jsonl")


class _KeptOrDropped(beam.DoFn):
    """``(group_id, rows)`` → kept rows; dropped ones as ``(rule, row)`` on ``DROPPED``."""

    def __init__(self, rules: tuple[str, ...]):
        self.rules = rules

    def process(self, keyed, boilerplate_keys=()):
        _, rows = keyed
        pairs = [(row["text_a"], row["text_b"]) for row in rows]
        keys = set(boilerplate_keys)
        common = {text for pair in pairs for text in pair if sentence_key(text) in keys}
        for row, rule in zip(rows, group_drops(pairs, self.rules, common), strict=True):
            if rule is None:
                yield row
            else:
                Metrics.counter(NAMESPACE, f"pairs_dropped_{rule}").inc()
                yield beam.pvalue.TaggedOutput(DROPPED, (rule, row))


def _audit_item(dropped: tuple[str, dict[str, Any]], seed: int):
    rule, row = dropped
    key = (content_hash(seed, "dropped", rule, row["text_a"], row["text_b"]),
           row["text_a"], row["text_b"], row["group_id"])
    return rule, (key, row)


def write_audit(sampled, output_dir: str) -> Iterator[str]:
    """Write one rule's sample (``(rule, [(key, row), ...])``) as JSON lines; yield the path."""
    rule, items = sampled
    path = audit_path(output_dir, rule)
    lines = [json.dumps({"rule": rule, **row}, ensure_ascii=False) for _, row in items]
    with FileSystems.create(path) as f:
        f.write(("\n".join(lines) + "\n").encode())
    yield path


class FilterPairs(beam.PTransform):
    """Scored pair rows → the rows no rule of ``rules`` drops (see the module docstring).

    ``sentence_keys``: a PCollection of ``sentence_key`` per distinct sentence per group (needed
    when ``boilerplate`` is among the rules). ``audit_dir``: where ``_dropped-<rule>.jsonl``
    go (``None``: no audit files).
    """

    def __init__(self, rules: tuple[str, ...], boilerplate_groups: int, seed: int,
                 sentence_keys=None, audit_dir: str | None = None):
        super().__init__()
        unknown = set(rules) - set(RULES)
        if unknown:
            raise ValueError(f"unknown pair filter(s) {sorted(unknown)}")
        self.rules, self.boilerplate_groups, self.seed = rules, boilerplate_groups, seed
        self.sentence_keys, self.audit_dir = sentence_keys, audit_dir

    def expand(self, rows):
        grouped = rows | "KeyByGroup" >> beam.Map(lambda r: (r["group_id"], r)) | (
            "GroupPairs" >> beam.GroupByKey())
        side = []
        if "boilerplate" in self.rules:
            least = self.boilerplate_groups
            common = (
                self.sentence_keys
                | "CountGroupsPerSentence" >> beam.combiners.Count.PerElement()
                | "InManyGroups" >> beam.Filter(lambda kv: kv[1] >= least)
                | "BoilerplateKeys" >> beam.Keys()
            )
            side = [beam.pvalue.AsList(common)]
        judged = grouped | "ApplyRules" >> beam.ParDo(
            _KeptOrDropped(self.rules), *side).with_outputs(DROPPED, main="kept")
        if self.audit_dir is not None:
            judged[DROPPED] | "Audit" >> WriteAudits(self.seed, self.audit_dir)
        return judged["kept"]


class WriteAudits(beam.PTransform):
    """``(rule, row)`` items → per rule the ``AUDIT_ROWS`` rows with the smallest
    ``content_hash(seed, "dropped", rule, text_a, text_b)``, written to
    ``DIR/_dropped-<rule>.jsonl`` (``write_audit``); yields the paths."""

    def __init__(self, seed: int, audit_dir: str):
        super().__init__()
        self.seed, self.audit_dir = seed, audit_dir

    def expand(self, dropped):
        return (
            dropped
            | "AuditKey" >> beam.Map(_audit_item, self.seed)
            | "AuditSample" >> beam.combiners.Top.SmallestPerKey(AUDIT_ROWS)
            | "WriteAudit" >> beam.FlatMap(write_audit, self.audit_dir)
        )
