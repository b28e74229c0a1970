"""End-to-end runs of ``pipelines.qa_pairs`` on real QA data, broken lines and options."""

import gzip
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import qa_pairs
from pipelines.io import read_json, read_jsonl, read_pairs
from pipelines.job import OptionError, main
from pipelines.schema import PAIR_SCHEMA, REASONS
from similarity import SCHEMES, score, split_sentences


def real_slice(shared_data, tmp_path, lines: int, name: str = "qa.jsonl"):
    source = (shared_data / "qa" / "qa_sample.jsonl").read_bytes().split(b"\n")[:lines]
    path = tmp_path / name
    path.write_bytes(b"\n".join(source) + b"\n")
    return path, [json.loads(line) for line in source]


def row_set(output_dir) -> list[tuple]:
    return sorted(tuple(r.values()) for r in read_pairs(str(output_dir)).to_pylist())


def run_qa(input_path, output_dir, *extra):
    return qa_pairs.run(["--input", str(input_path), "--output", str(output_dir),
                         "--runner=FnApiRunner", *extra])


def test_real_qa_slice_pairs_are_admitted_cross_answer_canonical_and_distinct(
    shared_data, tmp_path
):
    path, records = real_slice(shared_data, tmp_path, 400)
    run_qa(path, tmp_path / "out")
    table = read_pairs(str(tmp_path / "out"))
    assert table.schema == PAIR_SCHEMA and table.num_rows > 0
    sentences = {r["id"]: [set(split_sentences(a, 64)) for a in r["answers"]] for r in records}
    thresholds = SCHEMES["qa"]
    pairs = table.to_pylist()
    for pair in pairs:
        exact = score(pair["text_a"], pair["text_b"])
        assert thresholds.low <= exact < thresholds.high
        assert pair["score"] == pytest.approx(exact, rel=1e-6)
        assert pair["scheme"] == "qa" and pair["text_a"] < pair["text_b"]
        answers = sentences[pair["group_id"]]
        assert any(pair["text_a"] in answers[i] and pair["text_b"] in answers[j]
                   for i in range(len(answers)) for j in range(len(answers)) if i != j)
    assert len({(p["text_a"], p["text_b"]) for p in pairs}) == len(pairs)
    summary = read_json(str(tmp_path / "out" / "_summary.json"))
    counters = summary["counters"]
    assert summary["accounting"] == {"records_read": 400, "accepted": 400, "rejected": 0,
                                     "balanced": True}
    assert counters["pairs_written"] == len(pairs)
    dropped = summary["pairs_dropped_by_rule"]
    assert counters["pairs_admitted"] == (len(pairs) + counters.get("duplicate_pairs_dropped", 0)
                                          + sum(dropped.values()))
    assert summary["pair_accounting"]["balanced"] and dropped
    # every rule that dropped a pair left its audit sample beside the output
    written = {(p["text_a"], p["text_b"]) for p in pairs}
    assert sorted(summary["outputs"]["dropped"]) == sorted(
        str(tmp_path / "out" / f"_dropped-{rule}.jsonl") for rule in dropped)
    for rule, count in dropped.items():
        audit = read_jsonl(str(tmp_path / "out" / f"_dropped-{rule}.jsonl"))
        assert len(audit) == min(count, 50) and {a["rule"] for a in audit} == {rule}
        assert not {(a["text_a"], a["text_b"]) for a in audit} & written
    assert counters["candidate_pairs_scored"] >= counters["pairs_admitted"]
    assert summary["thresholds"] == {"low": thresholds.low, "high": thresholds.high}
    assert summary["variant"] and summary["version"] and summary["options"]["scheme"] == "qa"


def test_two_runs_give_identical_rows_across_processes_shards_and_input_formats(
    shared_data, tmp_path
):
    path, records = real_slice(shared_data, tmp_path, 150)
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "qa.parquet")
    run_qa(path, tmp_path / "one", "--num_shards=1")
    run_qa(tmp_path / "qa.parquet", tmp_path / "two", "--num_shards=3",
           "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert row_set(tmp_path / "one") and row_set(tmp_path / "one") == row_set(tmp_path / "two")
    assert len(list((tmp_path / "two").glob("pairs-*-of-00003.parquet"))) == 3


BROKEN_LINES = {
    b"\xff\xfe{\"id\": \"bad-bytes\"}": "invalid_utf8",
    b"   ": "blank_line",
    b'{"id": "cut", "answers": ["\xe4\xbb\x8a\xe5\xa4\xa9"': "invalid_json",
    b"[" * 100_000: "invalid_json",
    b'["an", "array"]': "not_object",
    b"42": "not_object",
    b'{"question": "q", "answers": ["\xe4\xbb\x8a\xe5\xa4\xa9\xe5\xa4\xa9\xe6\xb0\x94"]}':
        "missing_field",
    b'{"id": "no-answers", "question": "q"}': "missing_field",
    b'{"id": "null-answers", "answers": null}': "missing_field",
    b'{"id": 7, "answers": ["x"]}': "wrong_type",
    b'{"id": "str-answers", "answers": "just one string"}': "wrong_type",
    b'{"id": "mixed", "answers": ["fine", 3]}': "wrong_type",
    b'{"id": "q-type", "question": 5, "answers": ["fine"]}': "wrong_type",
    b'{"id": "", "answers": ["fine"]}': "empty_id",
    b'{"id": "lone\\ud800surrogate", "answers": ["fine"]}': "invalid_utf8",
    b'{"id": "empty", "answers": []}': "empty_list",
    b'{"id": "blank", "answers": ["", "   "]}': "no_text",
    b'{"id": "huge", "answers": ["' + "长".encode() * 400_000 + b'"]}': "too_large",
}


def test_broken_lines_are_dead_lettered_with_reasons_and_accounting_is_exact(
    shared_data, tmp_path
):
    _, records = real_slice(shared_data, tmp_path, 60)
    good = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    no_sentence = b'{"id": "valid-but-empty", "answers": ["!!!", "\xe5\x93\x88"]}'
    surrogate = b'{"id": "repaired", "answers": ["\xe4\xbb\x8a\\udc00\xe5\xa4\xa9", "x"]}'
    lines, expected = [], {}
    for k, (broken, reason) in enumerate(BROKEN_LINES.items()):
        lines += [good[k], broken]
        expected[len(lines)] = reason
    lines += [*good[len(BROKEN_LINES):], no_sentence, surrogate,
              good[0].replace(b"}", b"}\r", 1)]
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with gzip.open(inputs / "mixed-2.jsonl.gz", "wb") as f:
        f.write(good[1] + b"\n")
    (inputs / "corrupt.jsonl.gz").write_bytes(b"\x1f\x8b this is not a gzip stream")
    run_qa(inputs / "*", tmp_path / "out")

    dead = read_jsonl(str(tmp_path / "out" / "_rejected-*.jsonl"))
    by_line = {d["line_no"]: d["reason"] for d in dead if d["source"].endswith("mixed.jsonl")}
    assert by_line == expected
    assert len(set(expected.values())) >= 10 and set(expected.values()) <= set(REASONS)
    assert [d["reason"] for d in dead if d["source"].endswith("corrupt.jsonl.gz")] == [
        "unreadable_file"]
    for d in dead:
        assert d["detail"] and len(d["record"]) <= 1000 and d["record_bytes"] >= 0
    summary = read_json(str(tmp_path / "out" / "_summary.json"))
    books = summary["accounting"]
    assert books["records_read"] == len(lines) + 1 + 1
    assert books["rejected"] == len(dead) == len(BROKEN_LINES) + 1
    assert books["accepted"] == len(lines) - len(BROKEN_LINES) + 1 and books["balanced"]
    assert summary["rejected_by_reason"]["invalid_json"] == 2
    assert summary["counters"]["texts_without_sentences"] >= 2
    assert summary["counters"]["texts_with_lone_surrogates"] == 1
    assert read_pairs(str(tmp_path / "out")).num_rows > 0


def test_no_arguments_run_the_bundled_sample_into_out_qa(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    qa_pairs.run([])
    summary = read_json("out/qa/_summary.json")
    assert summary["accounting"]["records_read"] == 200 and summary["accounting"]["balanced"]
    assert summary["options"]["input"].endswith("pipelines/data/qa_sample.jsonl")
    assert read_pairs("out/qa").num_rows == summary["counters"]["pairs_written"] > 0


def test_cli_direct_runner_finishes_quickly_and_prints_the_summary(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.qa_pairs", "--runner=DirectRunner", "--num_shards=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "200 read = 200 accepted + 0 rejected (ok)" in done.stdout
    assert len(list((tmp_path / "out" / "qa").glob("pairs-*-of-00002.parquet"))) == 2


def test_main_turns_option_errors_into_exit_code_2(capsys):
    assert main(qa_pairs.run, ["--low", "2"]) == 2
    assert "--low/--high" in capsys.readouterr().err


@pytest.mark.parametrize("argv, option", [
    (["--low", "0.9", "--high", "0.5"], "--low/--high"),
    (["--max_len", "0"], "--max_len"),
    (["--num_shards", "-1"], "--num_shards"),
    (["--pair_filters", "near_copy,near_copies"], "--pair_filters: unknown pair filter"),
    (["--boilerplate_groups", "1"], "--boilerplate_groups must be >= 2"),
    (["--input", "/nowhere/*.jsonl"], "--input"),
    (["--runner=DataflowRunner", "--project=p-1", "--region=r", "--temp_location=gs://b/t"],
     "--input"),
])
def test_bad_options_raise_errors_naming_the_option(argv, option, tmp_path):
    with pytest.raises(OptionError, match=option):
        qa_pairs.run([*argv, "--output", str(tmp_path)])


def test_pair_filters_option_none_and_a_chosen_rule(shared_data, tmp_path):
    path, _ = real_slice(shared_data, tmp_path, 150)
    run_qa(path, tmp_path / "none", "--pair_filters", "none")
    run_qa(path, tmp_path / "one", "--pair_filters", "near_copy")
    none, one = (read_json(str(tmp_path / name / "_summary.json")) for name in ("none", "one"))
    assert none["options"]["pair_filters"] == [] and none["pairs_dropped_by_rule"] == {}
    assert one["options"]["pair_filters"] == ["near_copy"]
    assert set(one["pairs_dropped_by_rule"]) == {"near_copy"}
    assert one["counters"]["pairs_written"] == (
        none["counters"]["pairs_written"] - one["pairs_dropped_by_rule"].get("near_copy", 0))
