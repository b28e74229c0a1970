"""benchmarks/corpus_quality.py: the join of emitted and judged pairs, coverage and label shares."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import corpus_quality as cq
from pipelines.schema import PAIR_SCHEMA, SUMMARY_FILE
from similarity.calibrate import JudgedPair, read_judged, write_judged


def pair(a: str, b: str, score: float = 0.5, label: str = "", scheme: str = "doc") -> JudgedPair:
    return JudgedPair(a, b, score, scheme, label, "why" if label else "")


def test_judged_by_key_joins_either_text_order_and_rejects_two_labels(tmp_path):
    first, second, clash = tmp_path / "a.tsv", tmp_path / "b.tsv", tmp_path / "c.tsv"
    write_judged(first, [pair("甲", "乙", label="P"), pair("丙", "丁", label="N")])
    write_judged(second, [pair("乙", "甲", label="P")])
    judged = cq.judged_by_key([first, second])
    assert {key: row.label for key, row in judged.items()} == {("乙", "甲"): "P", ("丁", "丙"): "N"}
    write_judged(clash, [pair("丁", "丙", label="D")])
    with pytest.raises(ValueError, match=r"c\.tsv.*judged D here but N in .*a\.tsv"):
        cq.judged_by_key([first, clash])


def test_measure_counts_coverage_shares_and_yield():
    emitted = [pair(f"句{k}", f"对{k}") for k in range(10)]
    sample = emitted[:5]
    judged = {row.key: row for row in [
        pair("对0", "句0", label="P"),  # reversed order still joins
        pair("句1", "对1", label="R"),
        pair("句2", "对2", label="D"),
        pair("句3", "对3", label="J"),
        pair("句7", "对7", label="N"),  # judged, emitted, outside the sample
        pair("别的", "句子", label="P"),  # judged but not emitted: ignored
    ]}
    quality, todo = cq.measure("doc", 400, emitted, sample, judged)
    counts = (quality.written, quality.judged, quality.sampled, quality.sample_judged)
    assert counts == (10, 5, 5, 4)
    assert quality.sample_labels == {"P": 1, "R": 1, "D": 1, "J": 1}
    assert quality.share("P+R") == 0.5 and quality.share("D") == 0.25 and quality.share("N") == 0
    assert quality.good_per_1000_records() == 1000 * 10 * 0.5 / 400
    assert todo == [emitted[4]]


def test_measure_without_judged_pairs_prints_dashes():
    emitted = [pair("句", "对")]
    quality, todo = cq.measure("qa", 7, emitted, emitted, {})
    assert quality.share("P+R") is None and quality.good_per_1000_records() is None
    assert todo == emitted
    row = cq.format_table([quality]).splitlines()[-1]
    assert row == "| qa | 7 | 1 | 0/1 (0%) | 1 | 0/1 (0%) | - | - | - | - | - | - | - |"


def fake_output(folder, rows, records):
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(
        [{"text_a": a, "text_b": b, "score": s, "scheme": "doc", "group_id": "g"}
         for a, b, s in rows], schema=PAIR_SCHEMA)
    pq.write_table(table, folder / "pairs-00000-of-00001.parquet")
    (folder / SUMMARY_FILE).write_text(json.dumps({"accounting": {"records_read": records}}))


def test_main_reuses_outputs_filters_scores_and_writes_todo(tmp_path, capsys):
    fake_output(tmp_path / "out" / "doc",
                [("甲一", "甲二", 0.60), ("乙一", "乙二", 0.70), ("丙一", "丙二", 0.95)], 20)
    judged = tmp_path / "judged"
    judged.mkdir()
    write_judged(judged / "doc-x.tsv", [pair("甲二", "甲一", 0.6, "R")])
    code = cq.main(["--out", str(tmp_path / "out"), "--reuse", "--schemes", "doc", "--judged",
                    str(judged), "--scores", "0.5:0.9", "--todo", str(tmp_path / "todo")])
    assert code == 0
    table_row = capsys.readouterr().out.splitlines()[3]
    assert table_row == ("| doc | 20 | 2 | 1/2 (50%) | 2 | 1/2 (50%) | 100% | 0% | 100% | 0% | 0% "
                         "| 0% | 100.0 |")
    todo = read_judged(tmp_path / "todo" / "doc-todo.tsv", unlabelled=True)
    assert [(row.text_a, row.text_b, row.label) for row in todo] == [("乙一", "乙二", "")]


def test_main_names_the_file_of_a_bad_judged_row(tmp_path, capsys):
    judged = tmp_path / "judged"
    judged.mkdir()
    header = "text_a\ttext_b\tscore\tscheme\tlabel\treason\n"
    (judged / "bad.tsv").write_text(header + "甲\t乙\t0.5\tdoc\tX\t?\n")
    assert cq.main(["--judged", str(judged), "--out", str(tmp_path), "--reuse"]) == 2
    assert "bad.tsv:2" in capsys.readouterr().err


def test_bad_options_exit_with_usage(capsys):
    for argv in (["--scores", "0.9:0.5"], ["--schemes", "qa,web"], ["--reuse"], ["--sample", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            cq.parse_args(argv)
        assert exit_info.value.code == 2


def test_main_names_a_missing_output_instead_of_a_traceback(tmp_path, capsys):
    assert cq.main(["--out", str(tmp_path / "none"), "--reuse", "--schemes", "qa",
                    "--judged", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: qa: ")


def test_main_names_a_missing_shared_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cq, "SHARED", tmp_path)
    assert cq.main(["--schemes", "doc", "--judged", str(tmp_path)]) == 2
    assert "error: doc: --input: no file matches" in capsys.readouterr().err
