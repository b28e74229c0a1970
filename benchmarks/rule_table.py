"""What each pair filter and sentence filter would drop among the judged pairs, by label.

    python benchmarks/rule_table.py [--judged DIR] [--schemes qa,doc,question]

For every judged pair (``benchmarks/judged/*.tsv``, read by ``similarity.calibrate.read_judged``;
a pair judged in several files counts once, first file in name order) it asks each rule of
``similarity.pair_filters.RULES`` whether it drops the pair, and each sentence filter of
``similarity.text`` (``DEFAULT_FILTERS``, ``QUESTION_FILTERS`` for questions) whether it drops
either side, and prints per scheme and rule the P/R/N/D/J counts of what it drops and the P+R
share of those, beside the same counts over all judged pairs: a rule is worth keeping when its
dropped P+R share is well below the overall one and it drops few P.

Group context (the template rule's frame counts, the boilerplate rule's sentences in several
groups) comes from the scheme's shared sample (``../shared/data``): the group whose current
sentences include both texts, its pairs admitted by ``admitted_pairs`` at the scheme's
``SCHEMES`` band, and sentences found in at least ``DEFAULT_BOILERPLATE_GROUPS`` groups.
Pairs whose texts are no longer sentences of one group (the splitter changed since they were
judged) get an empty context and are counted in the row ``not emitted any more``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from pipelines.schema import doc_group, qa_group, question_group
from pipelines.transforms import split_group
from similarity import SCHEMES, admitted_pairs
from similarity.calibrate import LABELS, JudgedPair, read_judged
from similarity.pair_filters import (
    DEFAULT_BOILERPLATE_GROUPS,
    RULES,
    GroupView,
    group_view,
)
from similarity.text import DEFAULT_FILTERS, FILTER_RULES, QUESTION_FILTERS, SCHEME_FILTERS

SHARED = Path(os.environ.get("SIMPAIRS_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]
SAMPLES = {"qa": ("qa/qa_sample.jsonl", qa_group), "doc": ("docs/docs_sample.jsonl", doc_group),
           "question": ("groups/groups_sample.jsonl", question_group)}


def judged_pairs(folder: Path) -> dict[str, list[JudgedPair]]:
    """Scheme → distinct labelled pairs of every ``*.tsv`` under ``folder``."""
    seen: set[tuple[str, str]] = set()
    by_scheme: dict[str, list[JudgedPair]] = defaultdict(list)
    for path in sorted(folder.glob("*.tsv")):
        for pair in read_judged(path):
            key = (min(pair.text_a, pair.text_b), max(pair.text_a, pair.text_b))
            if pair.label and key not in seen:
                seen.add(key)
                by_scheme[pair.scheme].append(pair)
    return by_scheme


class Contexts:
    """``GroupView`` of the sample group holding both texts of a pair (see the docstring)."""

    def __init__(self, scheme: str, records: Iterable[dict]):
        to_group = SAMPLES[scheme][1]
        self.band = SCHEMES[scheme]
        self.groups = {}
        groups_of: dict[str, set[str]] = defaultdict(set)
        for record in records:
            group = split_group(to_group(record), 64, split_texts=scheme != "question",
                                filters=SCHEME_FILTERS[scheme])
            self.groups[group.group_id] = group.sentences
            for sentence in group.sentences:
                groups_of[sentence].add(group.group_id)
        self.groups_of = groups_of
        self.boilerplate = {s for s, ids in groups_of.items()
                            if len(ids) >= DEFAULT_BOILERPLATE_GROUPS}
        self.views: dict[str, GroupView] = {}

    def view(self, a: str, b: str) -> GroupView | None:
        common = self.groups_of.get(a, set()) & self.groups_of.get(b, set())
        if not common:
            return None
        group_id = min(common)
        if group_id not in self.views:
            sentences = list(self.groups[group_id])
            pairs = admitted_pairs(sentences, self.band.low, self.band.high)
            self.views[group_id] = group_view(
                [(sentences[i], sentences[j]) for i, j, _ in pairs], self.boilerplate)
        return self.views[group_id]


def rule_counts(pairs: list[JudgedPair], contexts: Contexts, question: bool) -> dict[str, Counter]:
    """Row name → label counts: ``all``, ``not emitted any more``, each pair rule, each
    sentence filter rule (a pair counts once per rule)."""
    filters = QUESTION_FILTERS if question else DEFAULT_FILTERS
    rows: dict[str, Counter] = defaultdict(Counter)
    for pair in pairs:
        rows["all"][pair.label] += 1
        view = contexts.view(pair.text_a, pair.text_b)
        if view is None:
            rows["not emitted any more"][pair.label] += 1
            view = GroupView()
        for name, rule in RULES.items():
            if rule.drops(pair.text_a, pair.text_b, view):
                rows[f"pair: {name}"][pair.label] += 1
        for name in {filters.rejection(t) for t in (pair.text_a, pair.text_b)} - {None}:
            rows[f"sentence: {name}"][pair.label] += 1
    order = ["all", "not emitted any more", *(f"pair: {n}" for n in RULES),
             *(f"sentence: {n}" for n in FILTER_RULES)]
    return {name: rows[name] for name in order if rows.get(name)}


def markdown(scheme: str, rows: dict[str, Counter]) -> str:
    lines = [f"| {scheme}: dropped by | " + " | ".join(LABELS) + " | P+R share |",
             "|---|" + "---|" * (len(LABELS) + 1)]
    for name, counts in rows.items():
        total = sum(counts.values())
        share = (counts["P"] + counts["R"]) / total
        lines.append(f"| {name} | " + " | ".join(str(counts[label]) for label in LABELS)
                     + f" | {share:.0%} of {total} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", type=Path, default=REPO / "benchmarks" / "judged")
    parser.add_argument("--schemes", default="qa,doc,question")
    args = parser.parse_args(argv)
    by_scheme = judged_pairs(args.judged)
    for scheme in args.schemes.split(","):
        path = SHARED / SAMPLES[scheme][0]
        with path.open(encoding="utf-8") as handle:
            contexts = Contexts(scheme, map(json.loads, handle))
        print(markdown(scheme, rule_counts(by_scheme[scheme], contexts, scheme == "question")))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
