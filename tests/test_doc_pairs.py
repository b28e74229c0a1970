"""End-to-end runs of ``pipelines.doc_pairs`` on real documents; fan-out; a Dataflow build."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import GoogleCloudOptions, SetupOptions
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

from pipelines import doc_pairs, qa_pairs
from pipelines.io import read_json, read_jsonl, read_pairs
from pipelines.job import build_pipeline
from pipelines.schema import PAIR_SCHEMA
from similarity import FILTER_RULES, SCHEMES, score, split_sentences
from similarity.pair_filters import SCHEME_RULES


def real_docs(shared_data, tmp_path, lines: int):
    source = (shared_data / "docs" / "docs_sample.jsonl").read_bytes().split(b"\n")[:lines]
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"\n".join(source) + b"\n")
    return path, {r["id"]: r["text"] for r in map(json.loads, source)}


def rows(output_dir) -> list[tuple]:
    return sorted(tuple(r.values()) for r in read_pairs(str(output_dir)).to_pylist())


def run_doc(input_path, output_dir, *extra):
    return doc_pairs.run(["--input", str(input_path), "--output", str(output_dir),
                          "--runner=FnApiRunner", *extra])


def test_real_docs_pairs_lie_inside_one_document_and_the_doc_thresholds(shared_data, tmp_path):
    path, texts = real_docs(shared_data, tmp_path, 120)
    run_doc(path, tmp_path / "out")
    table = read_pairs(str(tmp_path / "out"))
    assert table.schema == PAIR_SCHEMA and table.num_rows > 0
    thresholds = SCHEMES["doc"]
    for pair in table.to_pylist():
        exact = score(pair["text_a"], pair["text_b"])
        assert thresholds.low <= exact < thresholds.high and pair["scheme"] == "doc"
        assert pair["text_a"] < pair["text_b"]
        sentences = set(split_sentences(texts[pair["group_id"]], 64))
        assert {pair["text_a"], pair["text_b"]} <= sentences
    summary = read_json(str(tmp_path / "out" / "_summary.json"))
    assert summary["accounting"]["records_read"] == 120 and summary["accounting"]["balanced"]
    assert summary["counters"]["pairs_written"] == table.num_rows
    assert set(summary["sentences_dropped_by_rule"]) <= set(FILTER_RULES)
    assert set(summary["pairs_dropped_by_rule"]) <= set(SCHEME_RULES["doc"])
    assert summary["pair_accounting"]["balanced"]
    for rule in ("number_mismatch", "few_shared_words"):  # the word-level rules run and are audited
        dropped = summary["pairs_dropped_by_rule"][rule]
        assert dropped > 0 and summary["counters"][f"pairs_dropped_{rule}"] == dropped
        audit = read_jsonl(str(tmp_path / "out" / f"_dropped-{rule}.jsonl"))
        assert 0 < len(audit) <= min(dropped, 50) and {row["rule"] for row in audit} == {rule}


def test_big_documents_fan_out_into_block_tasks_with_the_same_rows(shared_data, tmp_path):
    path, _ = real_docs(shared_data, tmp_path, 40)
    run_doc(path, tmp_path / "whole", "--low=0.3")
    run_doc(path, tmp_path / "blocks", "--low=0.3", "--fanout_block=6", "--lsh_cutoff=1000000")
    fanned = read_json(str(tmp_path / "blocks" / "_summary.json"))["counters"]
    assert fanned["groups_fanned_out"] > 0 and fanned["pair_tasks"] > 40
    assert rows(tmp_path / "whole") and rows(tmp_path / "blocks") == rows(tmp_path / "whole")


def test_no_arguments_run_the_bundled_sample_into_out_doc(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc_pairs.run([])
    summary = read_json("out/doc/_summary.json")
    assert summary["accounting"]["records_read"] == 200 and summary["accounting"]["balanced"]
    assert read_pairs("out/doc").num_rows == summary["counters"]["pairs_written"] > 0


@pytest.mark.parametrize("job", [doc_pairs.JOB, qa_pairs.JOB])
def test_pipeline_builds_with_dataflow_options_without_running(job):
    argv = ["--runner=DataflowRunner", "--project=my-project", "--region=europe-west1",
            "--temp_location=gs://my-bucket/tmp", "--setup_file=./setup.py",
            "--input=gs://my-bucket/in/*.jsonl", "--output=gs://my-bucket/out",
            "--num_shards=64", "--codec=snappy"]
    pipeline, settings = build_pipeline(argv, job)
    assert isinstance(pipeline.runner, DataflowRunner)
    assert pipeline.options.view_as(GoogleCloudOptions).project == "my-project"
    assert pipeline.options.view_as(GoogleCloudOptions).region == "europe-west1"
    assert pipeline.options.view_as(SetupOptions).setup_file == "./setup.py"
    assert (settings.input, settings.output, settings.num_shards, settings.codec) == (
        "gs://my-bucket/in/*.jsonl", "gs://my-bucket/out", 64, "snappy")
    labels = [t.unique_name for t in pipeline.to_runner_api().components.transforms.values()]
    assert len(labels) == len(set(labels))
    assert any(label.endswith("FanOutBigGroups") for label in labels)


def test_setup_file_sdist_ships_the_packages_and_bundled_samples(tmp_path):
    """What Dataflow stages for ``--setup_file ./setup.py``: ``python setup.py sdist``."""
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path)],
                   cwd=repo, check=True, capture_output=True, timeout=120)
    (archive,) = tmp_path.glob("simpairs-*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(archive).getnames() if "/" in name}
    assert {"pipelines/qa_pairs.py", "pipelines/doc_pairs.py", "pipelines/transforms.py",
            "similarity/__init__.py", "model/__init__.py", "pipelines/data/qa_sample.jsonl",
            "pipelines/data/docs_sample.jsonl", "pipelines/data/SOURCES.md"} <= names
