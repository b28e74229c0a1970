"""``pipelines.build_all``: every step wired together, Beam options passed on, exact balance."""

import pytest

import pipelines.io
from pipelines import build_all, report
from pipelines.io import DATA_DIR, read_json, read_pairs

SAMPLES = {"qa_sample.jsonl": 40, "docs_sample.jsonl": 40, "groups_sample.jsonl": 60,
           "groups_reference_sample.jsonl": 14}


def check_demo(out, beam_option: str | None = None) -> dict:
    manifest = read_json(str(out / "corpus" / "_manifest.json"))
    inputs = manifest["inputs"]
    assert inputs["question"]["globs"] == [f"{out}/question"]
    assert inputs["general"]["globs"] == [f"{out}/qa", f"{out}/doc"]
    general = sum(read_pairs(str(out / s)).num_rows for s in ("qa", "doc"))
    question = read_pairs(str(out / "question")).num_rows
    assert (inputs["general"]["rows"], inputs["question"]["rows"]) == (general, question)
    per_scheme = manifest["rows_per_scheme"]
    assert per_scheme["question"] == min(question, general)
    assert per_scheme.get("qa", 0) + per_scheme.get("doc", 0) == min(question, general)
    for step in ("qa", "doc", "question"):
        summary = read_json(str(out / step / "_summary.json"))
        assert summary["accounting"]["balanced"] and summary["scheme"] == step
        if beam_option:
            assert beam_option in summary["beam_options"]
    page = (out / "corpus" / "_report.html").read_text(encoding="utf-8")
    assert all(f"<h2>{section}" in page for section in report.SECTIONS)
    return manifest


def test_build_all_on_small_bundled_slices(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name, lines in SAMPLES.items():
        head = (DATA_DIR / name).read_bytes().splitlines()[:lines]
        (data / name).write_bytes(b"\n".join(head) + b"\n")
    monkeypatch.setattr(pipelines.io, "DATA_DIR", data)
    out = tmp_path / "out"
    assert build_all.main(["--output", str(out), "--seed=5", "--num_shards=2",
                           "--direct_running_mode=multi_threading"]) == 0
    manifest = check_demo(out, "direct_running_mode")
    assert manifest["seed"] == 5 and len(manifest["shards"]) == 2
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(f"report: {out}/corpus/_report.html")
    assert "== pipelines.build_corpus" in printed


def test_bad_corpus_option_is_one_line_error(tmp_path, capsys):
    assert build_all.main(["--output", str(tmp_path / "o"), "--ratio=0"]) == 2
    assert "--ratio" in capsys.readouterr().err


@pytest.mark.slow
def test_build_all_on_the_bundled_samples(tmp_path):
    assert build_all.main(["--output", str(tmp_path / "out")]) == 0
    check_demo(tmp_path / "out")
