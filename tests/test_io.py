"""Reading lines/rows with bounded memory, Parquet shards (empty ones too), dead-letter files."""

import gzip
import io
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.io import (
    ReadRecords,
    WritePairs,
    clear_outputs,
    input_format,
    iter_lines,
    iter_parquet_rows,
    output_patterns,
    read_jsonl,
    read_pairs,
)
from pipelines.schema import PAIR_SCHEMA


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1 << 20])
def test_iter_lines_numbers_lines_and_strips_bom_cr_and_newline(chunk_size):
    data = b"\xef\xbb\xbf{}\r\n\nab\r\nlast"
    lines = list(iter_lines(io.BytesIO(data), 100, chunk_size))
    assert lines == [(1, b"{}", 2, False), (2, b"", 0, False), (3, b"ab", 2, False),
                     (4, b"last", 4, False)]
    assert list(iter_lines(io.BytesIO(b"a\n"), 100, chunk_size)) == [(1, b"a", 1, False)]
    assert list(iter_lines(io.BytesIO(b""), 100, chunk_size)) == []


@pytest.mark.parametrize("chunk_size", [2, 5, 1 << 20])
def test_iter_lines_flags_long_lines_and_keeps_only_their_head(chunk_size):
    data = b"x" * 50 + b"\nshort\n" + b"y" * 11
    lines = list(iter_lines(io.BytesIO(data), 10, chunk_size))
    assert [(n, size, over) for n, _, size, over in lines] == [(1, 50, True), (2, 5, False),
                                                               (3, 11, True)]
    assert lines[0][1].startswith(b"x") and len(lines[0][1]) <= 50
    assert lines[1][1] == b"short"


def test_input_format_by_extension_unless_forced():
    assert input_format("a/b.parquet") == "parquet"
    assert input_format("a/b.jsonl.gz") == "jsonl"
    assert input_format("a/b.data", "parquet") == "parquet"


def test_read_records_jsonl_gzip_parquet_and_unreadable_files(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"id": "1"}\n' + b"z" * 40 + b"\n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as f:
        f.write(b'{"id": "2"}\n')
    pq.write_table(pa.table({"id": ["3", "4"]}), tmp_path / "c.parquet")
    (tmp_path / "d.jsonl.gz").write_bytes(b"not gzip at all")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        records, rejected = p | "Read" >> ReadRecords(str(tmp_path / "*"), max_record_bytes=20)
        keyed = records | "Key" >> beam.Map(lambda r: (r[0].rsplit("/", 1)[1], r[1], r[2]))
        assert_that(keyed, equal_to([
            ("a.jsonl", 1, b'{"id": "1"}'), ("b.jsonl.gz", 1, b'{"id": "2"}'),
            ("c.parquet", 1, {"id": "3"}), ("c.parquet", 2, {"id": "4"}),
        ]), label="CheckRecords")
        reasons = rejected | "Why" >> beam.Map(
            lambda d: (d["source"].rsplit("/", 1)[1], d["line_no"], d["reason"]))
        assert_that(reasons, equal_to([("a.jsonl", 2, "too_large"),
                                       ("d.jsonl.gz", None, "unreadable_file")]),
                    label="CheckRejected")


def test_iter_parquet_rows_counts_rows_from_one():
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": ["a", "b", "c"]}), buf, row_group_size=2)
    buf.seek(0)
    assert list(iter_parquet_rows(buf, batch_size=1)) == [(1, {"id": "a"}), (2, {"id": "b"}),
                                                           (3, {"id": "c"})]


@pytest.mark.parametrize("codec", ["zstd", "snappy"])
def test_write_pairs_shards_with_schema_and_codec_and_empty_shards_read_fine(tmp_path, codec):
    rows = [{"text_a": "甲", "text_b": "乙", "score": 0.5, "scheme": "doc", "group_id": "g"}]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        rows_in = p | "CreateRows" >> beam.Create(rows)
        rows_in | "Write" >> WritePairs(str(tmp_path), num_shards=3, codec=codec)
    shards = sorted(tmp_path.glob("pairs-*-of-00003.parquet"))
    assert [s.name for s in shards] == [f"pairs-0000{i}-of-00003.parquet" for i in range(3)]
    assert sum(pq.ParquetFile(s).metadata.num_rows for s in shards) == 1  # two empty shards
    for shard in shards:
        assert pq.read_schema(shard).remove_metadata() == PAIR_SCHEMA
        meta = pq.ParquetFile(shard).metadata
        for k in range(meta.num_row_groups):
            assert meta.row_group(k).column(0).compression == codec.upper()
    (tmp_path / "pairs-00003-of-00004.parquet").write_bytes(b"")  # a zero-byte shard
    table = read_pairs(str(tmp_path))
    assert table.schema == PAIR_SCHEMA
    assert table.to_pylist() == [dict(rows[0], score=pytest.approx(0.5))]


def test_read_pairs_of_a_folder_without_shards_is_an_empty_table(tmp_path):
    table = read_pairs(str(tmp_path))
    assert table.num_rows == 0 and table.schema == PAIR_SCHEMA


def test_clear_outputs_removes_only_our_files(tmp_path):
    ours = ["pairs-00000-of-00002.parquet", "_rejected-00000-of-00001.jsonl", "_summary.json"]
    for name in [*ours, "notes.txt", "pairs.csv"]:
        (tmp_path / name).write_text("x")
    removed = clear_outputs(str(tmp_path), output_patterns(str(tmp_path)))
    assert sorted(p.rsplit("/", 1)[1] for p in removed) == sorted(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "pairs.csv"]


def test_read_jsonl_reads_every_matching_file(tmp_path):
    (tmp_path / "r-0.jsonl").write_text(json.dumps({"a": 1}) + "\n")
    (tmp_path / "r-1.jsonl").write_text("")
    assert read_jsonl(str(tmp_path / "r-*.jsonl")) == [{"a": 1}]
