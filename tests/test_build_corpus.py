"""``pipelines.build_corpus`` (and its transforms in ``pipelines.corpus``): exact balancing,
determinism, seeds, sharding without loss, manifest counts, validation split, errors."""

import json
from collections import Counter

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import build_corpus
from pipelines.corpus import (
    GENERAL,
    QUESTION,
    MarkSmallest,
    balance_targets,
    bucket_bits,
    find_cut,
    row_parts,
)
from pipelines.hashing import content_hash
from pipelines.io import read_json, read_parquet_shards
from pipelines.job import OptionError, main
from pipelines.schema import PAIR_SCHEMA
from similarity import score, split_sentences


def real_pair_rows(shared_data, scheme: str, n: int) -> list[dict]:
    """``n`` pair rows made of real texts: consecutive texts of a group (question) or
    consecutive sentences of a document (doc), scored with ``similarity.score`` (as float32)."""
    rows = []
    if scheme == "question":
        path = shared_data / "groups" / "groups_sample.jsonl"
        groups = ((g["id"], g["texts"]) for g in map(json.loads, path.open(encoding="utf-8")))
    else:
        path = shared_data / "docs" / "docs_sample.jsonl"
        groups = ((d["id"], split_sentences(d["text"]))
                  for d in map(json.loads, path.open(encoding="utf-8")))
    for group_id, texts in groups:
        for a, b in zip(texts, texts[1:], strict=False):
            if a != b and len(rows) < n:
                rows.append({"text_a": min(a, b), "text_b": max(a, b), "score": score(a, b),
                             "scheme": scheme, "group_id": group_id})
        if len(rows) == n:
            return pa.Table.from_pylist(rows, schema=PAIR_SCHEMA).to_pylist()
    raise AssertionError(f"not enough {scheme} rows")


def write_parts(folder, rows: list[dict], parts: int) -> None:
    """``rows`` as ``folder/pairs-*.parquet`` in ``parts`` files, the last one empty."""
    folder.mkdir(parents=True)
    for k in range(parts):
        chunk = rows[k::parts - 1] if k < parts - 1 else []
        table = pa.Table.from_pylist(chunk, schema=PAIR_SCHEMA)
        pq.write_table(table, folder / f"pairs-{k:05d}-of-{parts:05d}.parquet")


def key(row: dict) -> tuple:
    return row_parts(row)


def multiset(rows) -> Counter:
    return Counter(map(key, rows))


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("inputs")
    question = real_pair_rows(shared_data, "question", 300)
    general = real_pair_rows(shared_data, "doc", 130)
    write_parts(base / "question", question, 4)
    write_parts(base / "doc", general, 3)
    return base, question, general


def build(inputs, out, *extra):
    base, _, _ = inputs
    build_corpus.run(["--question", str(base / "question"), "--general", str(base / "doc"),
                      "--output", str(out), "--runner=FnApiRunner", *extra])
    manifest = read_json(str(out / "_manifest.json"))
    train = read_parquet_shards(str(out / "train-*.parquet")).to_pylist()
    valid = read_parquet_shards(str(out / "valid-*.parquet")).to_pylist()
    return manifest, train, valid


@pytest.fixture(scope="module")
def downsampled(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "out"
    return out, build(inputs, out, "--num_shards=3", "--seed=7")


@pytest.mark.parametrize("q, g, ratio, mode, expected", [
    (300, 130, 1.0, "downsample", (130, 130)),
    (100, 130, 1.0, "downsample", (100, 100)),
    (300, 130, 0.5, "downsample", (65, 130)),
    (300, 130, 3.0, "downsample", (300, 100)),
    (301, 100, 1.5, "downsample", (150, 100)),
    (300, 130, 1.0, "cycle", (300, 300)),
    (100, 130, 1.0, "cycle", (130, 130)),
    (7, 1000, 0.5, "cycle", (500, 1000)),
    (5, 5, 1.0, "cycle", (5, 5)),
])
def test_balance_targets(q, g, ratio, mode, expected):
    targets = balance_targets(q, g, ratio, mode)
    assert (targets[QUESTION], targets[GENERAL]) == expected
    assert abs(targets[QUESTION] - ratio * targets[GENERAL]) <= max(1, ratio / 2)


@pytest.mark.parametrize("args, message", [
    ((0, 5, 1.0, "downsample"), "--question"),
    ((5, 0, 1.0, "cycle"), "--general"),
    ((5, 5, 0.0, "cycle"), "--ratio"),
    ((5, 5, 1.0, "shuffle"), "--mode"),
])
def test_balance_targets_errors(args, message):
    with pytest.raises(ValueError, match=message):
        balance_targets(*args)


def test_find_cut_and_bucket_bits():
    counts = [(3, 5), (0, 2), (1, 0), (7, 4)]
    assert find_cut(counts, 1) == (0, 1)
    assert find_cut(counts, 2) == (0, 2)
    assert find_cut(counts, 3) == (3, 1)
    assert find_cut(counts, 10) == (7, 3)
    assert bucket_bits(10) == 0 and bucket_bits(2048) == 1 and bucket_bits(10**12) == 20


def test_mark_smallest_is_exact_with_duplicates():
    n = 3000
    rows = [{"k": k % 2900} for k in range(n)]
    keyed = [((content_hash(5, str(r["k"])), r["k"]), r) for r in rows]
    ordered = [r["k"] for _, r in sorted(keyed, key=lambda kr: kr[0])]
    assert bucket_bits(n) > 0
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        source = p | beam.Create(keyed)
        for m in (0, 1, 1000, 2999, 3000, 3001):
            marked = (source | f"Mark{m}" >> MarkSmallest(m, n)
                      | f"Flagged{m}" >> beam.Filter(lambda fr: fr[0])
                      | f"Value{m}" >> beam.Map(lambda fr: fr[1]["k"]))
            assert_that(marked, equal_to(ordered[:m]), label=f"Exact{m}")


def test_downsample_keeps_exact_ratio_and_loses_nothing(downsampled, inputs):
    out, (manifest, train, valid) = downsampled
    _, question, general = inputs
    by_scheme = Counter(r["scheme"] for r in train)
    assert by_scheme == {"question": 130, "doc": 130} and valid == []
    assert multiset(r for r in train if r["scheme"] == "doc") == multiset(general)
    kept = multiset(r for r in train if r["scheme"] == "question")
    assert sum(kept.values()) == 130 and not kept - multiset(question)
    expected = sorted(question, key=lambda r: (content_hash(7, "select", *key(r)), key(r)))[:130]
    assert kept == multiset(expected)
    files = sorted(p.name for p in out.glob("*.parquet"))
    assert files == [f"train-{k:05d}-of-00003.parquet" for k in range(3)]
    for shard in manifest["shards"]:
        table = pq.read_table(out / shard["file"])
        assert table.schema == PAIR_SCHEMA and table.num_rows == shard["rows"]
        assert dict(Counter(table.column("scheme").to_pylist())) == shard["rows_per_scheme"]
    assert manifest["total_rows"] == len(train) == 260
    assert manifest["rows_per_scheme"] == {"doc": 130, "question": 130}
    assert manifest["rows_per_split"] == {"train": 260}
    assert manifest["inputs"][QUESTION]["rows"] == 300
    assert manifest["inputs"][GENERAL]["rows_out"] == 130
    assert (manifest["seed"], manifest["ratio"], manifest["mode"]) == (7, 1.0, "downsample")
    assert len(manifest["content_hash"]) == 64 and manifest["created"]


def test_rows_are_shuffled_not_grouped_by_scheme(downsampled):
    _, (_, train, _) = downsampled
    schemes = [r["scheme"] for r in train]
    switches = sum(a != b for a, b in zip(schemes, schemes[1:], strict=False))
    assert switches > 60


def test_determinism_across_runs_and_workers_and_seed(downsampled, inputs, tmp_path):
    out, (manifest, train, _) = downsampled
    again, rows, _ = build(inputs, tmp_path / "again", "--num_shards=3", "--seed=7",
                           "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert again["content_hash"] == manifest["content_hash"] and rows == train
    for shard in manifest["shards"]:
        assert (out / shard["file"]).read_bytes() == (tmp_path / "again" / shard["file"]) \
            .read_bytes()
    other, rows, _ = build(inputs, tmp_path / "seed", "--num_shards=3", "--seed=8")
    assert other["content_hash"] != manifest["content_hash"]
    chosen = {key(r) for r in rows if r["scheme"] == "question"}
    assert chosen != {key(r) for r in train if r["scheme"] == "question"}


def test_cycle_repeats_the_smaller_side_with_exact_ratio(inputs, tmp_path):
    _, question, general = inputs
    manifest, train, _ = build(inputs, tmp_path / "c", "--mode=cycle", "--ratio=2.5",
                               "--num_shards=2")
    counts = Counter(r["scheme"] for r in train)
    assert counts == {"question": 325, "doc": 130} == manifest["rows_per_scheme"]
    copies = multiset(r for r in train if r["scheme"] == "question")
    assert set(copies) == set(multiset(question)) and set(copies.values()) == {1, 2}
    by_hash = sorted(question, key=lambda r: (content_hash(0, "select", *key(r)), key(r)))
    assert {key(r) for r in by_hash[:25]} == {k for k, c in copies.items() if c == 2}


def test_valid_split_holds_out_whole_groups(inputs, tmp_path):
    manifest, train, valid = build(inputs, tmp_path / "v", "--valid_fraction=0.3",
                                   "--num_valid_shards=2")
    assert valid and train
    assert not {r["group_id"] for r in train} & {r["group_id"] for r in valid}
    assert manifest["rows_per_split"] == {"train": len(train), "valid": len(valid)}
    assert Counter(r["scheme"] for r in train + valid) == {"question": 130, "doc": 130}
    assert sorted(p.name for p in (tmp_path / "v").glob("valid-*")) == [
        "valid-00000-of-00002.parquet", "valid-00001-of-00002.parquet"]


@pytest.mark.parametrize("extra, message", [
    (["--question", "/nonexistent/q"], "--question"),
    (["--ratio=-1"], "--ratio"),
    (["--valid_fraction=1.5"], "--valid_fraction"),
    (["--num_shards=0"], "--num_shards"),
    (["--input=x.jsonl"], "--input"),
])
def test_bad_options_name_the_option(inputs, tmp_path, extra, message):
    base, _, _ = inputs
    with pytest.raises(OptionError, match=message):
        build_corpus.run(["--question", str(base / "question"), "--general", str(base / "doc"),
                          "--output", str(tmp_path / "x"), *extra])
    assert main(build_corpus.run, ["--general", str(tmp_path / "none")]) == 2


def test_null_values_fail_with_the_file_name(inputs, tmp_path):
    base, question, _ = inputs
    broken = tmp_path / "broken"
    broken.mkdir()
    rows = [dict(question[0], text_a=None), question[1]]
    pq.write_table(pa.Table.from_pylist(rows, schema=PAIR_SCHEMA),
                   broken / "pairs-00000-of-00001.parquet")
    with pytest.raises(Exception, match="null values"):
        build_corpus.run(["--question", str(broken), "--general", str(base / "doc"),
                          "--output", str(tmp_path / "x"), "--runner=FnApiRunner"])


def test_weights_keep_the_smallest_hash_share_of_a_general_scheme(inputs, shared_data, tmp_path):
    base, question, doc = inputs
    qa = real_pair_rows(shared_data, "qa", 40)
    write_parts(tmp_path / "qa", qa, 2)
    build_corpus.run(["--question", str(base / "question"),
                      "--general", str(base / "doc"), str(tmp_path / "qa"),
                      "--weights", "qa=1,doc=0.5", "--seed=3", "--output", str(tmp_path / "w"),
                      "--runner=FnApiRunner"])
    manifest = read_json(str(tmp_path / "w" / "_manifest.json"))
    train = read_parquet_shards(str(tmp_path / "w" / "train-*.parquet")).to_pylist()
    assert manifest["rows_per_scheme"] == {"doc": 65, "qa": 40, "question": 105}
    assert manifest["weights"] == {"weights": {"qa": 1.0, "doc": 0.5},
                                   "general_rows_per_scheme": {"doc": {"rows": 130, "kept": 65},
                                                               "qa": {"rows": 40, "kept": 40}}}
    by_hash = sorted(doc, key=lambda r: (content_hash(3, "select", *key(r)), key(r)))
    assert multiset(r for r in train if r["scheme"] == "doc") == multiset(by_hash[:65])
    assert multiset(r for r in train if r["scheme"] == "qa") == multiset(qa)


@pytest.mark.parametrize("weights, message", [
    ("doc=2", r"doc=2.0 is not in \[0, 1\]"),
    ("question=0.5", "expected SCHEME=W"),
    ("doc", "expected SCHEME=W"),
    ("doc=half", "doc='half' is not a number"),
    ("doc=0.5,doc=1", "doc given twice"),
])
def test_bad_weights_are_one_line_errors(inputs, tmp_path, weights, message, capsys):
    base, _, _ = inputs
    argv = ["--question", str(base / "question"), "--general", str(base / "doc"),
            "--output", str(tmp_path / "x"), "--weights", weights]
    with pytest.raises(OptionError, match=f"--weights: {message}"):
        build_corpus.run(argv)
    assert main(build_corpus.run, argv) == 2
    assert capsys.readouterr().err.count("\n") == 1
