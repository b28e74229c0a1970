"""``pipelines.question_pairs`` on real groups: cleaning, the cap, formats, dead letters."""

import json
from collections import Counter, defaultdict
from itertools import combinations

import pytest

from pipelines import question_pairs
from pipelines.hashing import content_hash
from pipelines.io import read_json, read_jsonl, read_pairs
from pipelines.job import OptionError
from pipelines.schema import PAIR_SCHEMA, Rejected, question_group
from pipelines.transforms import whole_text
from similarity import SCHEMES, normalise, score
from similarity.pair_filters import SCHEME_RULES, GroupView, first_drop
from similarity.text import QUESTION_FILTERS

PREFIXES = {"simbert-sample": 14, "chinesests": 40, "bq-valid-pos": 40}


def real_groups(shared_data) -> list[bytes]:
    """The 14 simbert groups, 40 chinesests groups and the first 40 BQ groups (up to 38 texts)."""
    taken = Counter()
    lines = []
    for line in (shared_data / "groups" / "groups_sample.jsonl").read_bytes().splitlines():
        prefix = json.loads(line)["id"].rsplit("-", 1)[0]
        if taken[prefix] < PREFIXES[prefix] if prefix in PREFIXES else False:
            taken[prefix] += 1
            lines.append(line)
    return lines


def rows_of(output_dir) -> list[tuple]:
    return sorted(tuple(r.values()) for r in read_pairs(str(output_dir)).to_pylist())


def run_question(input_path, output_dir, *extra):
    return question_pairs.run(["--input", str(input_path), "--output", str(output_dir),
                               "--runner=FnApiRunner", *extra])


def expected_pairs(records: list[dict], cap: int, seed: int, max_len: int = 64) -> set[tuple]:
    """Independent oracle: normalise, length + filters, dedup, all pairs < high, pair filters
    (the question scheme's need no group context), cap by hash."""
    high = SCHEMES["question"].high
    best: dict[tuple[str, str], str] = {}
    for record in records:
        kept = set()
        for text in record["texts"]:
            text = normalise(text)
            if text and len(text) <= max_len and QUESTION_FILTERS.rejection(text) is None:
                kept.add(text)
        pairs = [(a, b) for a, b in combinations(sorted(kept), 2) if score(a, b) < high
                 and first_drop(a, b, GroupView(), SCHEME_RULES["question"]) is None]
        if cap:
            pairs = sorted(pairs, key=lambda p: (content_hash(seed, *p), p))[:cap]
        for pair in pairs:
            best[pair] = min(best.get(pair, record["id"]), record["id"])
    return {(a, b, gid) for (a, b), gid in best.items()}


@pytest.fixture(scope="module")
def groups_file(shared_data, tmp_path_factory):
    lines = real_groups(shared_data)
    path = tmp_path_factory.mktemp("groups") / "groups.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def default_run(groups_file, tmp_path_factory):
    path, records = groups_file
    out = tmp_path_factory.mktemp("q") / "out"
    run_question(path, out)
    return out, records


def test_real_groups_pairs_match_the_cleaning_and_cap_rules(default_run):
    out, records = default_run
    table = read_pairs(str(out))
    assert table.schema == PAIR_SCHEMA and table.num_rows > 0
    got = {(r["text_a"], r["text_b"], r["group_id"]) for r in table.to_pylist()}
    assert got == expected_pairs(records, question_pairs.DEFAULT_MAX_PAIRS_PER_GROUP, seed=0)
    per_group = Counter(r["group_id"] for r in table.to_pylist())
    assert max(per_group.values()) == question_pairs.DEFAULT_MAX_PAIRS_PER_GROUP
    for row in table.to_pylist():
        assert row["scheme"] == "question" and row["text_a"] < row["text_b"]
        assert row["score"] == pytest.approx(score(row["text_a"], row["text_b"]), rel=1e-6)
        assert 0.0 <= row["score"] < SCHEMES["question"].high
    summary = read_json(str(out / "_summary.json"))
    c = summary["counters"]
    assert summary["accounting"] == {"records_read": len(records), "accepted": len(records),
                                     "rejected": 0, "balanced": True}
    assert summary["scheme"] == "question" and summary["options"]["max_pairs_per_group"] == 20
    assert c["texts"] == sum(len(r["texts"]) for r in records)
    assert c["pairs_admitted"] == (c["pairs_written"] + c["pairs_over_group_cap_dropped"]
                                   + c.get("duplicate_pairs_dropped", 0)
                                   + sum(summary["pairs_dropped_by_rule"].values()))
    assert summary["pairs_dropped_by_rule"]["near_copy"] > 0
    assert c["pairs_over_group_cap_dropped"] > 0


def test_determinism_across_workers_and_seed(default_run, groups_file, tmp_path):
    out, records = default_run
    path, _ = groups_file
    run_question(path, tmp_path / "again", "--direct_num_workers=2")
    assert rows_of(tmp_path / "again") == rows_of(out)
    run_question(path, tmp_path / "seed1", "--seed=1")
    seeded = {r[:2] + r[4:] for r in rows_of(tmp_path / "seed1")}
    assert seeded == expected_pairs(records, 20, seed=1) != {r[:2] + r[4:] for r in rows_of(out)}


def test_reference_format_without_cap(shared_data, tmp_path):
    simbert = [json.loads(line) for line in real_groups(shared_data)[:14]]
    assert all(r["id"].startswith("simbert-sample") for r in simbert)
    (tmp_path / "ref.jsonl").write_text("".join(
        json.dumps({"text": r["texts"][0], "synonyms": r["texts"][1:]}, ensure_ascii=False)
        + "\n" for r in simbert), encoding="utf-8")
    run_question(tmp_path / "ref.jsonl", tmp_path / "out", "--max_pairs_per_group=0")
    ids = {r["id"]: question_group({"text": r["texts"][0], "synonyms": r["texts"][1:]})[0]
           for r in simbert}
    expected = {(a, b, ids[gid]) for a, b, gid in expected_pairs(simbert, 0, seed=0)}
    assert expected and {r[:2] + r[4:] for r in rows_of(tmp_path / "out")} == expected
    assert all(i.startswith("text-") for i in ids.values())


@pytest.mark.parametrize("record, expected", [
    ({"id": "g", "texts": ["a", "b"]}, ("g", ("a", "b"))),
    ({"text": "a", "synonyms": ["b"], "id": "r"}, ("r", ("a", "b"))),
    ({"text": "a", "synonyms": []}, (question_group({"text": "a", "synonyms": []})[0], ("a",))),
])
def test_question_group_formats(record, expected):
    assert tuple(question_group(record)) == expected


@pytest.mark.parametrize("record, reason", [
    ({"texts": ["a"]}, "missing_field"),
    ({"id": "g"}, "missing_field"),
    ({"id": "g", "texts": "a b"}, "wrong_type"),
    ({"id": "g", "texts": ["a", 3]}, "wrong_type"),
    ({"id": "g", "texts": []}, "empty_list"),
    ({"id": "g", "texts": [" ", ""]}, "no_text"),
    ({"id": " ", "texts": ["a"]}, "empty_id"),
    ({"synonyms": ["a"]}, "missing_field"),
    ({"text": 5, "synonyms": ["a"]}, "wrong_type"),
    ({"text": "a", "synonyms": "b"}, "wrong_type"),
])
def test_question_group_rejects(record, reason):
    with pytest.raises(Rejected) as err:
        question_group(record)
    assert err.value.reason == reason


def test_whole_text_rules():
    assert whole_text("  谁先提出离婚谁吃亏吗？ ", 64) == (["谁先提出离婚谁吃亏吗?"], Counter())
    assert whole_text("我想问一下" * 20, 64) == ([], Counter({"too_long": 1}))
    assert whole_text("能贷不能", 64) == (["能贷不能"], Counter())
    assert whole_text("吃亏", 64) == ([], Counter({"too_short": 1}))
    assert whole_text(" \n", 64) == ([], Counter())


def test_cleaning_counters_and_bad_lines_are_dead_lettered(groups_file, tmp_path):
    path, records = groups_file
    clean = {"id": "hand-1", "texts": ["女方提出离婚吃亏吗？", "女方提出离婚吃亏吗?",
                                       "女方提出离婚会吃亏吗", "离婚的时候女方会不会吃亏", "吃亏",
                                       "  ", "离婚" * 40]}
    broken = [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_object"),
        (b'{"texts": ["a", "b"]}', "missing_field"),
        (b'{"id": "x", "texts": "a"}', "wrong_type"),
        (b'{"id": "x", "texts": ["a", 1]}', "wrong_type"),
        (b'{"id": "x", "texts": []}', "empty_list"),
        (b'{"id": "x", "texts": ["", " "]}', "no_text"),
        (b'{"id": "", "texts": ["a"]}', "empty_id"),
        (b'{"id": "x", "texts": ["\xff\xfe"]}', "invalid_utf8"),
        (b"   ", "blank_line"),
        (b'{"synonyms": ["a"]}', "missing_field"),
        (b'{"text": "a", "synonyms": {"b": 1}}', "wrong_type"),
        (b'{"id": "big", "texts": ["' + "长".encode() * 700 + b'"]}', "too_large"),
    ]
    lines = path.read_bytes().splitlines()
    for k, (line, _) in enumerate(broken):
        lines.insert(3 * k + 1, line)
    lines.append(json.dumps(clean, ensure_ascii=False).encode())
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    run_question(bad, tmp_path / "out", "--max_record_bytes=2000")
    dead = read_jsonl(str(tmp_path / "out" / "_rejected-*.jsonl"))
    assert sorted(d["reason"] for d in dead) == sorted(r for _, r in broken)
    by_line = {d["line_no"]: d["reason"] for d in dead}
    assert by_line == {3 * k + 2: reason for k, (_, reason) in enumerate(broken)}
    summary = read_json(str(tmp_path / "out" / "_summary.json"))
    c = summary["counters"]
    assert summary["accounting"] == {"records_read": len(lines), "accepted": len(records) + 1,
                                     "rejected": len(broken), "balanced": True}
    assert summary["rejected_by_reason"] == dict(Counter(r for _, r in broken))
    assert c["duplicate_sentences"] == 1
    assert c["sentences_dropped_too_long"] >= 1 and c["sentences_dropped_too_short"] >= 1
    hand = defaultdict(set)
    for row in read_pairs(str(tmp_path / "out")).to_pylist():
        hand[row["group_id"]].add((row["text_a"], row["text_b"]))
    # the one-character variant is a near-copy; the paraphrase pairs with both
    assert hand["hand-1"] == {("女方提出离婚会吃亏吗", "离婚的时候女方会不会吃亏"),
                              ("女方提出离婚吃亏吗?", "离婚的时候女方会不会吃亏")}
    assert c["pairs_dropped_near_copy"] >= 1


def test_no_arguments_uses_the_bundled_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    question_pairs.run([])
    summary = read_json("out/question/_summary.json")
    assert summary["accounting"]["records_read"] == 454 and summary["accounting"]["balanced"]
    assert read_pairs("out/question").num_rows == summary["counters"]["pairs_written"] > 0
    with pytest.raises(OptionError, match="--max_pairs_per_group"):
        question_pairs.run(["--max_pairs_per_group=-1", "--output", str(tmp_path / "x")])
