"""Shared PTransforms on tiny hand-built inputs with exact expected outputs."""

import json
from dataclasses import replace

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.schema import Group, qa_group
from pipelines.summary import collect_counters
from pipelines.transforms import (
    DedupPairs,
    GroupsToPairs,
    ParseRecords,
    ScoringConfig,
    answer_parts,
    copy_links,
    plan_tasks,
    score_task,
    split_group,
)
from similarity import score

BEIJING = "今天北京的天气很好。"
BEIJING_2 = "今天北京的天气真的很好。"
SHANGHAI = "今天上海的天气很好。"
WALK = "我们一起去公园散步吧。"
WALK_BANG = "我们一起去公园散步吧!"
WALK_TOMORROW = "我们明天一起去公园散步。"
LATER = "明天再说吧。"
VARIANT = "multiset"  # pinned, so the hand-checked scores below do not move with the default


def config(scheme="qa", low=0.35, high=0.9, cross=True, block=1000, cutoff=2000):
    return ScoringConfig(scheme=scheme, low=low, high=high, variant=VARIANT, max_len=64,
                         lsh_cutoff=cutoff, fanout_block=block, cross_text_only=cross)


def row(a, b, scheme, group_id):
    text_a, text_b = sorted((a, b))
    return {"text_a": text_a, "text_b": text_b, "score": score(a, b, VARIANT), "scheme": scheme,
            "group_id": group_id}


def test_qa_pairs_cross_answer_rule_thresholds_canonical_order_and_dedup():
    groups = [
        # same-answer pair (0.82) dropped; cross pairs 0.64 and 0.54 kept; 1.0 >= high dropped
        Group("q1", (BEIJING + BEIJING_2, SHANGHAI + WALK_BANG, WALK + LATER)),
        # the same (BEIJING, SHANGHAI) pair again, from a smaller id: kept once, with "q0"
        Group("q0", (BEIJING, SHANGHAI)),
        # WALK_TOMORROW occurs in both answers: copies of one text, joined, so no pair
        Group("q2", (WALK + WALK_TOMORROW, WALK_TOMORROW)),
        # one answer only: no pair may come out
        Group("q3", (BEIJING + BEIJING_2,)),
    ]
    expected = [
        row(BEIJING, SHANGHAI, "qa", "q0"),
        row(BEIJING_2, SHANGHAI, "qa", "q1"),
    ]
    assert expected[0]["text_a"] == SHANGHAI  # 上 (U+4E0A) < 北 (U+5317)
    assert 0.35 <= expected[1]["score"] < 0.9 and score(WALK, WALK_BANG, VARIANT) >= 0.9
    assert 0.35 <= score(BEIJING, BEIJING_2, VARIANT) < 0.9
    with BeamTestPipeline(runner="FnApiRunner") as p:
        pairs = (
            p
            | "CreateQA" >> beam.Create(groups)
            | "PairsQA" >> GroupsToPairs(config())
            | "DedupQA" >> DedupPairs()
        )
        assert_that(pairs, equal_to(expected), label="CheckQAPairs")


def test_answer_parts_join_answers_that_share_a_sentence():
    # answers 0 and 2 share WALK up to punctuation, 2 and 3 share "2、" + LATER up to the
    # marker: 0, 2, 3 are one text; 1 stands alone; 4 has no sentence in common with anyone
    group = split_group(Group("g", (
        WALK + BEIJING, SHANGHAI, WALK_BANG + LATER, "(2)" + LATER + BEIJING_2, WALK_TOMORROW,
    )), 64)
    label = dict(zip(group.sentences, answer_parts(group, copy_links(group)), strict=True))
    assert label[WALK] == label[BEIJING] == label[WALK_BANG] == label[LATER] == 0
    assert label[BEIJING_2] == label["(2)" + LATER] == 0
    assert label[SHANGHAI] == 1 and label[WALK_TOMORROW] == 4
    # without joining: the answer index, and a label of its own for a sentence in two answers
    both = split_group(Group("h", (WALK + BEIJING, WALK + SHANGHAI)), 64)
    plain = dict(zip(both.sentences, answer_parts(both), strict=True))
    assert plain[BEIJING] == 0 and plain[SHANGHAI] == 1 and plain[WALK] < 0


@pytest.mark.parametrize("pair_copies", [False, True])
def test_copied_answers_pair_only_with_other_answers(pair_copies):
    # answers 0 and 1 share WALK_TOMORROW: one text twice; answer 2 is another answer
    group = split_group(Group("q", (WALK_TOMORROW + BEIJING, SHANGHAI + WALK_TOMORROW,
                                    BEIJING_2)), 64)
    cfg = replace(config(), pair_copied_answers=pair_copies)
    pairs = {(r["text_a"], r["text_b"]) for task in plan_tasks(group, cfg)
             for r in score_task(task, cfg)}
    across = {tuple(sorted(p)) for p in ((BEIJING, BEIJING_2), (SHANGHAI, BEIJING_2))}
    within = {tuple(sorted((BEIJING, SHANGHAI)))}
    assert pairs == (across | within if pair_copies else across)


def test_doc_scheme_pairs_within_one_text_at_doc_thresholds():
    groups = [Group("d1", (BEIJING + BEIJING_2 + SHANGHAI,))]
    expected = [row(BEIJING, BEIJING_2, "doc", "d1"), row(BEIJING, SHANGHAI, "doc", "d1")]
    assert score(BEIJING_2, SHANGHAI, VARIANT) < 0.6 <= score(BEIJING, SHANGHAI, VARIANT)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        pairs = (
            p
            | "CreateDoc" >> beam.Create(groups)
            | "PairsDoc" >> GroupsToPairs(config("doc", 0.6, 0.9, cross=False))
            | "DedupDoc" >> DedupPairs()
        )
        assert_that(pairs, equal_to(expected), label="CheckDocPairs")


def test_threshold_interval_is_closed_low_open_high():
    value = score(BEIJING, SHANGHAI, VARIANT)
    group = split_group(Group("g", (BEIJING + SHANGHAI,)), 64)
    at_low = [r for t in plan_tasks(group, config("doc", value, 0.9, False))
              for r in score_task(t, config("doc", value, 0.9, False))]
    at_high = [r for t in plan_tasks(group, config("doc", 0.1, value, False))
               for r in score_task(t, config("doc", 0.1, value, False))]
    assert [r["score"] for r in at_low] == [value]
    assert at_high == []


def _all_rows(text, cfg):
    group = split_group(Group("big", (text,)), 64)
    return sorted(
        (r["text_a"], r["text_b"], r["score"])
        for task in plan_tasks(group, cfg) for r in score_task(task, cfg)
    ), group


@pytest.mark.parametrize("block", [5, 16, 37])
def test_fan_out_blocks_give_exactly_the_unsplit_pairs(shared_data, block):
    docs = (shared_data / "docs" / "docs_sample.jsonl").read_text(encoding="utf-8").split("\n")
    text = "".join(json.loads(line)["text"] for line in docs[:6])
    whole, group = _all_rows(text, config("doc", 0.3, 0.95, False))
    blocks = len(range(0, len(group.sentences), block))
    assert len(list(plan_tasks(group, config("doc", 0.3, 0.95, False, block)))) == (
        blocks * (blocks + 1) // 2
    )
    split, _ = _all_rows(text, config("doc", 0.3, 0.95, False, block))
    assert whole and split == whole


@pytest.mark.parametrize("block", [7, 19])
def test_fan_out_of_a_qa_group_keeps_the_cross_answer_rule(shared_data, block):
    lines = (shared_data / "qa" / "qa_sample.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    record = max(records, key=lambda r: sum(map(len, r["answers"])))
    group = split_group(qa_group(record), 64)
    label = dict(zip(group.sentences, answer_parts(group, copy_links(group)), strict=True))

    def rows(cfg):
        return sorted((r["text_a"], r["text_b"], r["score"])
                      for task in plan_tasks(group, cfg) for r in score_task(task, cfg))

    whole = rows(config("qa", 0.2, 0.95))
    assert len(list(plan_tasks(group, config("qa", 0.2, 0.95, block=block)))) > 1
    assert whole and rows(config("qa", 0.2, 0.95, block=block)) == whole
    assert len(set(label.values())) > 1 and all(label[a] != label[b] for a, b, _ in whole)


def test_lsh_method_above_cutoff_and_exact_below():
    group = split_group(Group("g", (BEIJING + SHANGHAI + LATER,)), 64)
    assert {t.method for t in plan_tasks(group, config(cutoff=2))} == {"lsh"}
    assert {t.method for t in plan_tasks(group, config(cutoff=3))} == {"exact"}
    assert list(plan_tasks(split_group(Group("g", (BEIJING,)), 64), config())) == []


def test_parse_records_routes_bad_records_to_dead_letters_with_reasons():
    good = json.dumps({"id": "a", "answers": [BEIJING, SHANGHAI]}, ensure_ascii=False).encode()
    raw = [
        ("f.jsonl", 1, good),
        ("f.jsonl", 2, b"\xff{}"),
        ("f.jsonl", 3, b"{not json"),
        ("f.jsonl", 4, b"   "),
        ("f.jsonl", 5, b"[1]"),
        ("f.jsonl", 6, b'{"id": "b"}'),
        ("f.jsonl", 7, b'{"id": "c", "answers": []}'),
        ("f.jsonl", 8, b'{"id": "d", "answers": ["x"], "pad": "' + b"y" * 200 + b'"}'),
        ("p.parquet", 9, {"id": "e", "answers": ["", " "]}),
        ("p.parquet", 10, {"id": "f", "answers": [BEIJING]}),
        ("f.jsonl", 11, b'{"id": "tab", "answers": ["raw\ttab"]}'),
    ]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        groups, rejected = p | "CreateRaw" >> beam.Create(raw) | "Parse" >> ParseRecords(
            qa_group, 200
        )
        accepted = [qa_group(json.loads(good)), Group("f", (BEIJING,)),
                    Group("tab", ("raw\ttab",))]
        assert_that(groups, equal_to(accepted), label="CheckAccepted")
        reasons = rejected | "Reason" >> beam.Map(lambda d: (d["line_no"], d["reason"]))
        assert_that(reasons, equal_to([
            (2, "invalid_utf8"), (3, "invalid_json"), (4, "blank_line"), (5, "not_object"),
            (6, "missing_field"), (7, "empty_list"), (8, "too_large"), (9, "no_text"),
        ]), label="CheckReasons")


def test_boilerplate_counts_groups_over_the_whole_input_and_audits_drops(tmp_path):
    # WALK occurs in two groups: with --boilerplate_groups 2 its pairs go, others stay
    groups = [Group("q1", (BEIJING, SHANGHAI + WALK)), Group("q2", (WALK, WALK_TOMORROW))]
    cfg = ScoringConfig(scheme="qa", low=0.35, high=0.9, variant=VARIANT, max_len=64,
                        lsh_cutoff=2000, fanout_block=1000, cross_text_only=True,
                        pair_filters=("boilerplate",), boilerplate_groups=2)
    pipeline = BeamTestPipeline()
    rows = (pipeline | beam.Create(groups)
            | GroupsToPairs(cfg, str(tmp_path)))
    assert_that(rows, equal_to([row(BEIJING, SHANGHAI, "qa", "q1")]))
    result = pipeline.run()
    result.wait_until_finish()
    counters = collect_counters(result)
    assert counters["pairs_admitted"] == 2 and counters["pairs_dropped_boilerplate"] == 1
    audit = [json.loads(line) for line in
             (tmp_path / "_dropped-boilerplate.jsonl").read_text(encoding="utf-8").splitlines()]
    assert audit == [{"rule": "boilerplate", **row(WALK, WALK_TOMORROW, "qa", "q2")}]


def test_copied_answers_are_counted_and_their_links_audited(tmp_path):
    # answers 0 and 1 share WALK (up to "!"), answer 2 repeats SHANGHAI of answer 1: one text
    groups = [Group("q", (WALK + BEIJING, WALK_BANG + SHANGHAI, SHANGHAI + LATER))]
    pipeline = BeamTestPipeline()
    rows = pipeline | beam.Create(groups) | GroupsToPairs(config(), str(tmp_path))
    assert_that(rows, equal_to([]))
    result = pipeline.run()
    result.wait_until_finish()
    assert collect_counters(result)["copied_answers_joined"] == 2
    audit = [json.loads(line) for line in (tmp_path / "_dropped-copied_answers.jsonl")
             .read_text(encoding="utf-8").splitlines()]
    expected = [{"rule": "copied_answers", **row(WALK, WALK_BANG, "qa", "q"), "score": 1.0},
                {"rule": "copied_answers", **row(SHANGHAI, SHANGHAI, "qa", "q"), "score": 1.0}]
    assert sorted(audit, key=str) == sorted(expected, key=str)


def test_unknown_pair_filter_names_the_option():
    with pytest.raises(ValueError, match="--pair_filters: unknown pair filter"):
        ScoringConfig(scheme="qa", low=0.4, high=0.6, variant=VARIANT, max_len=64,
                      lsh_cutoff=2000, fanout_block=1000, cross_text_only=True,
                      pair_filters=("near_copies",)).check()
