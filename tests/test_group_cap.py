"""``pipelines.group_cap``: the bounded path gives the old path's capped pairs, in O(n + cap).

The texts are hand-written synthetic questions (subject × problem × number × ending), not real
data: they make groups of any size with pairs in and above the band and near-copies.
"""

import json
import random
import time
import tracemalloc
from collections import Counter
from dataclasses import replace
from itertools import combinations, product

import numpy as np
import pytest

from pipelines import group_cap, question_pairs
from pipelines.group_cap import capped_pairs, takes_bounded_path
from pipelines.hashing import content_hash, pair_hash_rows
from pipelines.io import read_json, read_jsonl, read_pairs
from pipelines.transforms import ScoringConfig
from similarity import SCHEMES, score
from similarity.pair_filters import GroupView, first_drop

SUBJECTS = ("我的信用卡", "花呗", "借呗额度", "这个账户", "贷款申请", "手机银行", "银行卡",
            "保险理赔")
PROBLEMS = ("被冻结了", "还不上", "怎么提高", "不能用了", "审核不通过", "要多久到账", "忘记密码",
            "逾期一天")
ENDINGS = ("怎么办", "该怎么处理", "有什么办法吗", "会影响征信吗", "能解决吗", "")
QUESTIONS = sorted(f"{s}{p}{k}{e}" for s, p, k, e in
                   product(SUBJECTS, PROBLEMS, ("", *map(str, range(0, 40, 3))), ENDINGS))
BAND = SCHEMES["question"]
RULES = ("near_copy",)


def synthetic(n: int, seed: int) -> list[str]:
    """``n`` distinct synthetic questions, sorted (as ``split_group`` gives them)."""
    return sorted(random.Random(seed).sample(QUESTIONS, n))


def oracle(sentences, cap, seed, rules):
    """Every pair scored and judged, the ``cap`` passing pairs of smallest (hash, texts)."""
    passing = [(i, j) for i, j in combinations(range(len(sentences)), 2)
               if BAND.admits(score(sentences[i], sentences[j]))
               and first_drop(sentences[i], sentences[j], GroupView(), rules) is None]
    return sorted(passing, key=lambda p: (content_hash(seed, *(sentences[k] for k in p)), p))[:cap]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rules", [(), RULES, ("near_copy", "number_mismatch", "few_shared_words")])
def test_capped_pairs_equal_scoring_every_pair(seed, rules):
    rng = random.Random(seed)
    for n, cap in ((2, 1), (5, 3), (rng.randrange(20, 70), 20), (rng.randrange(20, 70), 1)):
        sentences = synthetic(n, seed * 100 + n)
        found = capped_pairs(sentences, cap, seed, BAND, "default", rules)
        assert [(i, j) for i, j, _ in found.kept] == oracle(sentences, cap, seed, rules)
        for i, j, value in found.kept + found.dropped:
            assert value == score(sentences[i], sentences[j]) and BAND.admits(value)
        assert all(first_drop(sentences[i], sentences[j], GroupView(), rules)
                   for i, j, _ in found.dropped)
        assert found.admitted == len(found.kept) + len(found.dropped) + found.evicted
        assert found.scored <= n * (n - 1) // 2


QUESTION = ScoringConfig(scheme="question", low=BAND.low, high=BAND.high, variant="default",
                         max_len=64, lsh_cutoff=1000, fanout_block=10_000, cross_text_only=False,
                         split_texts=False, max_pairs_per_group=20, pair_filters=RULES)


@pytest.mark.parametrize("change, n, bounded", [
    ({}, 3000, True),
    ({}, 200, False),  # 19,900 pairs: at most 1,000 per kept pair, the old path
    ({}, 201, True),
    ({"max_pairs_per_group": 0}, 3000, False),
    ({"pair_filters": ("near_copy", "template_sibling")}, 3000, False),
    ({"pair_filters": ("boilerplate",)}, 3000, False),
    ({"pair_filters": ("near_copy", "enumeration_sibling", "number_mismatch",
                       "few_shared_words")}, 3000, True),
    ({"cross_text_only": True}, 3000, False),
    ({"low": 0.3}, 3000, False),  # above lsh_cutoff: the LSH path may miss pairs
    ({"low": 0.3}, 1000, True),
])
def test_which_groups_take_the_bounded_path(change, n, bounded):
    assert takes_bounded_path(n, replace(QUESTION, **change)) is bounded


def run_question(path, out, *extra):
    question_pairs.run(["--input", str(path), "--output", str(out), "--runner=FnApiRunner",
                        *extra])
    rows = sorted(tuple(r.values()) for r in read_pairs(str(out)).to_pylist())
    return rows, read_json(str(out / "_summary.json"))


@pytest.fixture(scope="module")
def groups_file(tmp_path_factory):
    """Groups of 1, 6, 40 and 150 synthetic questions (one with a repeated text), the
    40-question line twice, and a second line of the 150-question group's id."""
    six = synthetic(6, 2)
    lines = [{"id": "one", "texts": synthetic(1, 1)},
             {"id": "six", "texts": six + six[:1]},
             {"id": "forty", "texts": synthetic(40, 3)},
             {"id": "big", "texts": synthetic(150, 4)},
             {"id": "forty", "texts": synthetic(40, 3)},
             {"id": "big", "texts": synthetic(30, 5)}]
    path = tmp_path_factory.mktemp("groups") / "groups.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("seed, rules", [(0, "near_copy"), (3, "near_copy,few_shared_words")])
def test_bounded_path_writes_what_the_old_path_writes(groups_file, tmp_path, monkeypatch, seed,
                                                      rules):
    """Every capped group bounded (the factor 0) or none (the factor huge): the same rows,
    the books balanced both ways; the duplicated line and the shared id as before."""
    runs = {}
    for name, factor in (("old", 10**12), ("bounded", 0)):
        monkeypatch.setattr(group_cap, "MIN_PAIRS_PER_CAP", factor)
        runs[name] = run_question(groups_file, tmp_path / name, f"--seed={seed}",
                                  f"--pair_filters={rules}")
    (old, old_summary), (bounded, summary) = runs["old"], runs["bounded"]
    assert bounded == old
    per_group = Counter(row[-1] for row in old)
    assert per_group["big"] == per_group["forty"] == 20 and per_group["six"] <= 15
    c, old_c = summary["counters"], old_summary["counters"]
    for name in ("records_read", "texts", "sentences", "duplicate_sentences", "pairs_written"):
        assert c[name] == old_c[name]
    assert summary["pair_accounting"]["balanced"] and old_summary["pair_accounting"]["balanced"]
    pairs = sum(n * (n - 1) // 2 for n in (6, 40, 150, 40, 30))
    assert c["candidate_pairs_scored"] + c["pairs_skipped_by_group_cap"] == pairs
    assert c["pairs_admitted"] < old_c["pairs_admitted"]
    assert "pairs_skipped_by_group_cap" not in old_c
    for rule, dropped in summary["pairs_dropped_by_rule"].items():
        audit = read_jsonl(str(tmp_path / "bounded" / f"_dropped-{rule}.jsonl"))
        assert len(audit) == min(dropped, 50)
    assert summary["pairs_dropped_by_rule"].get("few_shared_words", 0) > 0 or seed == 0


def test_3000_questions_in_one_group_in_seconds(tmp_path):
    """The known gap: one group of 3,000 questions (4.5 M pairs) was 1.5-2.9 GB and over
    180 s; now a few hundred pairs are scored and exactly the cap's 20 are written."""
    sentences = synthetic(3000, 0)
    (tmp_path / "big.jsonl").write_text(
        json.dumps({"id": "big", "texts": sentences}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    start = time.monotonic()
    rows, summary = run_question(tmp_path / "big.jsonl", tmp_path / "out")
    seconds = time.monotonic() - start
    c = summary["counters"]
    assert len(rows) == c["pairs_written"] == 20 and summary["pair_accounting"]["balanced"]
    assert c["candidate_pairs_scored"] + c["pairs_skipped_by_group_cap"] == 3000 * 2999 // 2
    assert c["candidate_pairs_scored"] < 2000 and seconds < 60, (c, seconds)
    # every pair whose hash is below the largest kept one is kept, out of the band or dropped
    index = {s: k for k, s in enumerate(sentences)}
    kept = {(index[a], index[b]) for a, b, *_ in rows}
    last = max(content_hash(0, a, b) for a, b, *_ in rows)
    for i, hashes in enumerate(pair_hash_rows(0, sentences)):
        for k in np.flatnonzero(hashes <= last).tolist():
            a, b = sentences[i], sentences[i + 1 + k]
            assert ((i, i + 1 + k) in kept) == (
                BAND.admits(score(a, b)) and first_drop(a, b, GroupView(), RULES) is None)


def test_capped_pairs_memory_does_not_grow_with_the_pairs():
    """1,500 questions (1.1 M pairs, ~100 MiB as pair tuples): a tracemalloc peak of a few
    MiB, the profiles and one row of hashes."""
    sentences = synthetic(1500, 7)
    tracemalloc.start()
    try:
        found = capped_pairs(sentences, 20, 0, BAND, "default", RULES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found.kept) == 20 and peak < 8 << 20, f"peak {peak >> 20} MiB"
