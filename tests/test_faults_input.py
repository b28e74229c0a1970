"""Input faults (issue 13): broken archives, records that raise, bad Parquet values, duplicated
lines, corpus limits and checks, exact-candidate memory. Each test failed before its fix."""

import bz2
import functools
import gzip
import json
import lzma
import os
import tracemalloc
import zlib
from collections import Counter

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import build_corpus, qa_pairs, question_pairs
from pipelines.corpus import MANIFEST_FILE
from pipelines.hashing import content_hash, content_hashes
from pipelines.io import (
    ReadRecords,
    read_json,
    read_jsonl,
    read_pairs,
    read_parquet_shards,
    shard_prefix,
)
from pipelines.job import OptionError, main
from pipelines.schema import PAIR_SCHEMA, REJECTED_PREFIX, SUMMARY_FILE, Group
from pipelines.transforms import ParseRecords
from similarity import SCHEMES, admitted_pairs, candidates, score, split_sentences

COMPRESSORS = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "deflate": zlib.compress,
    "zst": zstandard.ZstdCompressor().compress,
}
DECOMPRESSORS = {
    "gz": lambda: zlib.decompressobj(zlib.MAX_WBITS | 16),
    "bz2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
    "deflate": zlib.decompressobj,
    "zst": lambda: zstandard.ZstdDecompressor().decompressobj(),
}


def qa_lines(shared_data, count: int) -> list[bytes]:
    return (shared_data / "qa" / "qa_sample.jsonl").read_bytes().splitlines()[:count]


def run_qa(input_path, output_dir, *extra):
    return qa_pairs.run(["--input", str(input_path), "--output", str(output_dir),
                         "--runner=FnApiRunner", *extra])


def outcome(output_dir):
    """(accounting, dead letters) of a pair pipeline's output folder."""
    summary = read_json(shard_prefix(str(output_dir), SUMMARY_FILE))
    return summary["accounting"], read_jsonl(shard_prefix(str(output_dir),
                                                          f"{REJECTED_PREFIX}-*"))


def _named(item):
    """A record or dead letter of ``ReadRecords`` as a tuple, by file name (no payload)."""
    if isinstance(item, dict):
        return "rejected", item["source"].rsplit("/", 1)[1], item["line_no"], item["reason"]
    return "record", item[0].rsplit("/", 1)[1], item[1]


def _check_cut_archive(items, ext, complete_lines):
    counts = Counter(item[1] for item in items if item[0] == "record")
    assert counts[f"whole.jsonl.{ext}"] == 30
    assert counts[f"cut.jsonl.{ext}"] == complete_lines
    assert [item for item in items if item[0] == "rejected"] == [
        ("rejected", f"cut.jsonl.{ext}", None, "unreadable_file")]


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_truncated_archive_is_an_unreadable_file_with_the_lines_read(shared_data, tmp_path, ext):
    """Item 1: a cut archive of 30 real lines is a dead letter, never a short read, and
    the complete lines before the cut are read (as many as Python's decompressor gives)."""
    data = b"\n".join(qa_lines(shared_data, 30)) + b"\n"
    whole = COMPRESSORS[ext](data)
    (tmp_path / f"whole.jsonl.{ext}").write_bytes(whole)
    cut = whole[: len(whole) * 2 // 3]
    (tmp_path / f"cut.jsonl.{ext}").write_bytes(cut)
    complete_lines = DECOMPRESSORS[ext]().decompress(cut).count(b"\n")  # what the cut holds
    assert ext in ("bz2", "zst") or complete_lines > 0  # block codecs: nothing before the cut
    with BeamTestPipeline(runner="FnApiRunner") as p:
        records, rejected = p | ReadRecords(str(tmp_path / "*"), max_record_bytes=1 << 20)
        named = (records, rejected) | beam.Flatten() | beam.Map(_named)
        assert_that(named, functools.partial(_check_cut_archive, ext=ext,
                                             complete_lines=complete_lines), label="CheckRead")
        details = rejected | beam.Map(lambda d: d["detail"])
        assert_that(details, equal_to([f"EOFError: compressed stream ended before its "
                                       f"end-of-stream marker (after {complete_lines} records)"]),
                    label="CheckDetail")


def _group_or_raise(obj):
    return Group(obj["id"], (str(obj["texts"][0] / 2),))


def test_a_record_that_raises_is_dead_lettered_and_the_job_goes_on(shared_data, tmp_path):
    """Item 2: a 5000-digit integer (ValueError in json.loads) rejects one record only."""
    good = qa_lines(shared_data, 20)
    huge = b'{"id": "x", "n": ' + b"9" * 5000 + b', "answers": ["a", "b"]}'
    (tmp_path / "qa.jsonl").write_bytes(b"\n".join([*good[:10], huge, *good[10:]]) + b"\n")
    run_qa(tmp_path / "qa.jsonl", tmp_path / "out")
    books, letters = outcome(tmp_path / "out")
    assert books == {"records_read": 21, "accepted": 20, "rejected": 1, "balanced": True}
    assert [(d["line_no"], d["reason"]) for d in letters] == [(11, "invalid_json")]
    assert "4300 digits" in letters[0]["detail"]
    raw = [("f", 1, {"id": "a", "texts": ["x"]}), ("f", 2, b'{"id": "b", "texts": [4]}')]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        groups, rejected = p | beam.Create(raw) | ParseRecords(_group_or_raise, 1 << 20)
        assert_that(groups, equal_to([Group("b", ("2.0",))]), label="CheckGroups")
        assert_that(rejected | beam.Map(lambda d: (d["line_no"], d["reason"], d["detail"])),
                    equal_to([(1, "invalid_record",
                               "TypeError: unsupported operand type(s) for /: 'str' and 'int'")]),
                    label="CheckRejected")


def test_one_bad_parquet_value_or_row_group_loses_only_itself(tmp_path):
    """Item 4: invalid UTF-8 in row 700 of 1,200 costs that row, as does a timestamp Python
    cannot hold; a corrupt row group (snappy page overwritten) costs its 1,000 rows,
    dead-lettered with their count, not the file."""
    texts = [f"第{i}行的文本".encode() for i in range(1200)]
    texts[699] = b"\xff\xfe broken"
    pq.write_table(pa.table({"id": [str(i) for i in range(1200)],
                             "text": pa.array(texts, pa.binary()).view(pa.string())}),
                   tmp_path / "utf8.parquet")
    pq.write_table(pa.table({"id": [str(i) for i in range(3000)],
                             "text": [f"text number {i} " * 3 for i in range(3000)]}),
                   tmp_path / "groups.parquet", row_group_size=1000, compression="snappy",
                   use_dictionary=False)
    meta = pq.ParquetFile(tmp_path / "groups.parquet").metadata.row_group(1).column(1)
    data = bytearray((tmp_path / "groups.parquet").read_bytes())
    start = meta.data_page_offset + 200
    data[start:start + 400] = b"\xff" * 400
    (tmp_path / "groups.parquet").write_bytes(bytes(data))
    pq.write_table(pa.table({"id": ["a", "b", "c"],
                             "when": pa.array([0, 10**15, 1], pa.timestamp("s"))}),
                   tmp_path / "when.parquet")
    expected = [("record", "utf8.parquet", n) for n in range(1, 1201) if n != 700]
    expected += [("record", "when.parquet", 1), ("record", "when.parquet", 3),
                 ("rejected", "when.parquet", 2, "invalid_record")]
    expected += [("record", "groups.parquet", n) for n in [*range(1, 1001), *range(2001, 3001)]]
    expected += [("rejected", "utf8.parquet", 700, "invalid_utf8"),
                 ("rejected", "groups.parquet", 1001, "unreadable_rows")]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        records, rejected = p | ReadRecords(str(tmp_path / "*.parquet"), 1 << 20)
        assert_that((records, rejected) | beam.Flatten() | beam.Map(_named), equal_to(expected),
                    label="CheckRead")
        details = rejected | beam.Map(lambda d: d["detail"].split(":")[0:2])
        assert_that(details, equal_to([["a string value", " invalid start byte at byte 0"],
                                       ["row group 1", " rows 1001-2000 (1000 rows) not read"],
                                       ["OverflowError", " Python int too large to convert to "
                                                         "C int"]]),
                    label="CheckDetails")


def test_a_file_name_that_is_not_utf8_is_read_and_named(shared_data, tmp_path, capsys):
    """Probe: a file named with bytes that are not UTF-8 (``f\\xff.jsonl``) crashed the read
    (UnicodeEncodeError in Beam's coder); its records are read and its dead letters name it
    with the bad byte written as ``\\xff``."""
    lines = qa_lines(shared_data, 10)
    (tmp_path / "in").mkdir()
    name = bytes(tmp_path / "in") + b"/f\xff.jsonl"
    with open(name, "wb") as f:
        f.write(b"\n".join([*lines, b"{broken"]) + b"\n")
    run_qa(tmp_path / "in" / "*.jsonl", tmp_path / "out")
    books, letters = outcome(tmp_path / "out")
    assert books == {"records_read": 11, "accepted": 10, "rejected": 1, "balanced": True}
    assert [(d["source"].rsplit("/", 1)[1], d["line_no"]) for d in letters] == [
        ("f\\xff.jsonl", 11)]
    with pytest.raises(SystemExit) as exit_info:  # named directly: Beam cannot carry it
        run_qa(os.fsdecode(name), tmp_path / "out2")
    assert exit_info.value.code == 2
    assert "f\\xff.jsonl is not UTF-8; match it with a glob" in capsys.readouterr().err


def test_a_duplicated_question_line_does_not_shrink_its_group(shared_data, tmp_path):
    """Item 5: the same group twice gives the same capped pairs as once (was half of them)."""
    lines = (shared_data / "groups" / "groups_sample.jsonl").read_bytes().splitlines()
    big = max(lines, key=lambda line: (len(json.loads(line)["texts"]), line))
    (tmp_path / "once.jsonl").write_bytes(big + b"\n")
    (tmp_path / "twice.jsonl").write_bytes(big + b"\n" + big + b"\n")
    for name in ("once", "twice"):
        question_pairs.run(["--input", str(tmp_path / f"{name}.jsonl"), "--output",
                            str(tmp_path / name), "--runner=FnApiRunner"])
    once, twice = (sorted(tuple(r.values()) for r in read_pairs(str(tmp_path / name)).to_pylist())
                   for name in ("once", "twice"))
    assert len(once) == question_pairs.DEFAULT_MAX_PAIRS_PER_GROUP and twice == once
    summary = read_json(shard_prefix(str(tmp_path / "twice"), SUMMARY_FILE))
    counters, dropped = summary["counters"], sum(summary["pairs_dropped_by_rule"].values())
    assert counters["pairs_admitted"] == 2 * (counters["pairs_written"]
                                              + counters["pairs_over_group_cap_dropped"]) + dropped
    assert counters["duplicate_pairs_dropped"] == (counters["pairs_admitted"] - dropped) // 2
    assert summary["pair_accounting"]["balanced"]


def test_exact_candidates_work_in_blocks_with_bounded_memory(shared_data, monkeypatch):
    """Item 10: 3,000 real sentences on the exact path, in blocks of 2^16 prefix matches,
    give the same pairs as one block, with a tracemalloc peak under 32 MiB (was 84 MiB)."""
    with (shared_data / "docs" / "docs_sample.jsonl").open(encoding="utf-8") as handle:
        sentences = [s for line in handle for s in split_sentences(json.loads(line)["text"])]
    group = sentences[:3000]
    low, high = SCHEMES["doc"].low, SCHEMES["doc"].high
    monkeypatch.setattr(candidates, "_TABLE_CELLS", 1 << 20)
    monkeypatch.setattr(candidates, "_MATCHES_PER_BLOCK", 1 << 40, raising=False)
    whole = admitted_pairs(group, low, high, method="exact")
    monkeypatch.setattr(candidates, "_MATCHES_PER_BLOCK", 1 << 16, raising=False)
    tracemalloc.start()
    try:
        blocked = admitted_pairs(group, low, high, method="exact")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert blocked == whole and len(whole) > 100
    monkeypatch.setattr(candidates, "_MATCHES_PER_BLOCK", 1, raising=False)  # one x a block
    small = sentences[:300]
    assert admitted_pairs(small, 0.3, high, method="exact") == admitted_pairs(
        small, 0.3, high, method="brute")
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"


def pair_rows(shared_data, scheme: str, n: int) -> list[dict]:
    """``n`` pair rows of consecutive real questions of a group, scored, as ``scheme``."""
    rows = []
    for line in (shared_data / "groups" / "groups_sample.jsonl").open(encoding="utf-8"):
        group = json.loads(line)
        for a, b in zip(group["texts"], group["texts"][1:]):
            if a != b and len(rows) < n:
                rows.append({"text_a": min(a, b), "text_b": max(a, b), "score": score(a, b),
                             "scheme": scheme, "group_id": group["id"]})
    return rows


@pytest.fixture(scope="module")
def corpus_inputs(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("corpus_inputs")
    for side, scheme in (("question", "question"), ("general", "doc")):
        (base / side).mkdir()
        table = pa.Table.from_pylist(pair_rows(shared_data, scheme, 200), schema=PAIR_SCHEMA)
        if side == "general":  # a dictionary column (a pandas category) is a string column
            table = table.set_column(3, "scheme", table.column("scheme").dictionary_encode())
        pq.write_table(table, base / side / "pairs-00000-of-00001.parquet")
    return base


def corpus_args(base, out, *extra):
    return ["--question", str(base / "question"), "--general", str(base / "general"),
            "--output", str(out), "--runner=FnApiRunner", *extra]


def test_cycle_corpus_memory_does_not_grow_with_copies_and_max_rows(corpus_inputs, tmp_path):
    """Item 7: 200 rows cycled into 20,000 (--ratio 0.01) peak under 28 MiB (tracemalloc;
    was 42 MiB), every copy written; a plan above --max_rows is refused."""
    with pytest.raises(OptionError, match=r"--max_rows: the plan is 20,200 rows .* > --max_rows "
                                          r"20,000"):
        build_corpus.run(corpus_args(corpus_inputs, tmp_path / "refused", "--mode=cycle",
                                     "--ratio=0.01", "--max_rows=20000"))
    assert not list(tmp_path.rglob("train-*")) and not list(tmp_path.rglob(MANIFEST_FILE))
    tracemalloc.start()
    try:
        build_corpus.run(corpus_args(corpus_inputs, tmp_path / "out", "--mode=cycle",
                                     "--ratio=0.01", "--num_shards=2"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    train = read_parquet_shards(str(tmp_path / "out" / "train-*.parquet")).to_pylist()
    copies = Counter(tuple(r.values()) for r in train if r["scheme"] == "doc")
    assert len(train) == 20_200 and len(copies) == 200 and set(copies.values()) == {100}
    assert peak < 28 << 20, f"peak {peak >> 20} MiB"
    assert list(content_hashes(7, ("order", "a", "b"), ["0", "1", "99"])) == [
        content_hash(7, "order", "a", "b", copy) for copy in ("0", "1", "99")]


@pytest.mark.parametrize("column, values, message", [
    ("score", ["0.5"] * 3, "column 'score' is string, expected float"),
    ("text_a", [1, 2, 3], "column 'text_a' is int64, expected string"),
    ("group_id", ["g", None, "g"], "column 'group_id' has null values (1 rows)"),
    ("text_b", ["d", None, None], "column 'text_b' has null values (2 rows)"),
    ("score", [0.5, float("nan"), 1.5], "column 'score' has 2 value(s) outside [0, 1] or NaN"),
    ("scheme", ["doc", "nosuch", "doc"],
     "column 'scheme' has unknown value(s) ['nosuch'] (known: ['qa', 'doc', 'question'])"),
])
def test_corpus_inputs_are_checked_per_file_and_column(corpus_inputs, tmp_path, column, values,
                                                       message):
    """Item 8: a wrong type, a null or an unknown scheme is one error naming file and column,
    before the pipeline runs (was ArrowInvalid in a worker, a traceback, or accepted)."""
    rows = {"text_a": ["a", "b", "c"], "text_b": ["d", "e", "f"], "score": [0.5] * 3,
            "scheme": ["doc"] * 3, "group_id": ["g"] * 3, column: values}
    bad = tmp_path / "bad" / "pairs-00000-of-00001.parquet"
    bad.parent.mkdir()
    pq.write_table(pa.table(rows), bad, write_statistics=column != "text_b")  # text_b: no stats
    argv = ["--question", str(corpus_inputs / "question"), "--general", str(bad.parent),
            "--output", str(tmp_path / "out")]
    with pytest.raises(OptionError) as error:
        build_corpus.run(argv)
    assert str(error.value) == f"{bad}: {message}"
    assert main(build_corpus.run, argv) == 2
    assert not list(tmp_path.rglob("train-*")) and not list(tmp_path.rglob(MANIFEST_FILE))


def test_a_side_given_the_other_sides_pairs_is_one_line(corpus_inputs, tmp_path):
    """Probe: ``--question`` and ``--general`` swapped (or one folder given to both) built a
    corpus, balancing the wrong rows; now one line names the file and the scheme."""
    question, general = corpus_inputs / "question", corpus_inputs / "general"
    for argv, side, wrong in (
            (["--question", str(general), "--general", str(question)], "question", "doc"),
            (["--question", str(question), "--general", str(question)], "general", "question")):
        with pytest.raises(OptionError, match=rf"column 'scheme' has \['{wrong}'\] rows, but "
                                              rf"--{side} takes"):
            build_corpus.run([*argv, "--output", str(tmp_path / "out")])
    assert not list(tmp_path.rglob("train-*"))
