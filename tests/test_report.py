"""``pipelines.report`` on a corpus built from real pipeline outputs: sections, figures, samples."""

import base64
import html
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import build_corpus, doc_pairs, question_pairs, report
from pipelines.corpus import row_parts
from pipelines.hashing import content_hash
from pipelines.io import read_json, read_jsonl, read_parquet_shards
from pipelines.schema import PAIR_SCHEMA
from similarity import SCHEMES

HOSTILE = "<script>alert('问题')</script> & <b>答案</b>"


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    """question_pairs (with two broken lines) + doc_pairs on real slices, one hand-written
    general row full of HTML, balanced into a corpus."""
    base = tmp_path_factory.mktemp("report")
    groups = (shared_data / "groups" / "groups_sample.jsonl").read_bytes().splitlines()
    (base / "groups.jsonl").write_bytes(b"\n".join(groups[:60] + [b"{oops", b"[]"]) + b"\n")
    docs = (shared_data / "docs" / "docs_sample.jsonl").read_bytes().splitlines()
    (base / "docs.jsonl").write_bytes(b"\n".join(docs[:40]) + b"\n")
    common = ["--runner=FnApiRunner", "--num_shards=2"]
    question_pairs.run(["--input", str(base / "groups.jsonl"), "--output", str(base / "question"),
                        *common])
    doc_pairs.run(["--input", str(base / "docs.jsonl"), "--output", str(base / "doc"), *common])
    (base / "extra").mkdir()
    row = {"text_a": HOSTILE, "text_b": HOSTILE + "。", "score": 0.8, "scheme": "qa",
           "group_id": "hand-<1>"}
    pq.write_table(pa.Table.from_pylist([row], schema=PAIR_SCHEMA),
                   base / "extra" / "pairs-00000-of-00001.parquet")
    build_corpus.run(["--question", str(base / "question"), "--general", str(base / "doc"),
                      str(base / "extra"), "--output", str(base / "corpus"), "--seed=3",
                      "--valid_fraction=0.2", *common])
    assert report.main([str(base / "corpus")]) == 0
    return base


def test_report_has_every_section_and_decodable_figures(corpus):
    page = (corpus / "corpus" / "_report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert [h.split(" (")[0] for h in headings] == list(report.SECTIONS)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)


def test_report_shows_summaries_thresholds_and_counts(corpus):
    page = (corpus / "corpus" / "_report.html").read_text(encoding="utf-8")
    manifest = read_json(str(corpus / "corpus" / "_manifest.json"))
    summary = read_json(str(corpus / "question" / "_summary.json"))
    assert summary["rejected_by_reason"] == {"invalid_json": 1, "not_object": 1}
    assert "invalid_json 1, not_object 1" in page
    for rule, count in summary["sentences_dropped_by_rule"].items():
        assert f"{rule} {count:,}" in page
    for scheme in ("question", "doc"):
        t = SCHEMES[scheme]
        assert html.escape(f"{t.low} <= score < {t.high}") in page
    assert f"{manifest['total_rows']:,} rows" in page and manifest["content_hash"] in page


def test_report_shows_pair_filter_counts_and_audit_samples(corpus):
    page = (corpus / "corpus" / "_report.html").read_text(encoding="utf-8")
    section = page.split("<h2>Pair filters</h2>", 1)[1].split("<h2>", 1)[0]
    summary = read_json(str(corpus / "question" / "_summary.json"))
    dropped = summary["pairs_dropped_by_rule"]
    assert dropped["near_copy"] > 0
    assert f"near_copy {dropped['near_copy']:,}" in section
    audit = read_jsonl(str(corpus / "question" / "_dropped-near_copy.jsonl"))
    assert 0 < len(audit) <= 50 and summary["outputs"]["dropped"]
    shown = section.split("_dropped-near_copy.jsonl", 1)[1].split("</table>", 1)[0]
    assert shown.count("<tr>") == 1 + min(20, len(audit))
    for row in audit[:20]:
        assert html.escape(row["text_a"]) in shown and html.escape(row["text_b"]) in shown


def sample_table(page: str, scheme: str) -> str:
    return page.split(f"<h3>{scheme}</h3>", 1)[1].split("</table>", 1)[0]


def test_samples_are_seeded_hash_draws_per_scheme(corpus):
    page = (corpus / "corpus" / "_report.html").read_text(encoding="utf-8")
    rows = (read_parquet_shards(str(corpus / "corpus" / "train-*.parquet")).to_pylist()
            + read_parquet_shards(str(corpus / "corpus" / "valid-*.parquet")).to_pylist())
    for scheme in sorted({r["scheme"] for r in rows}):
        distinct = {row_parts(r): r for r in rows if r["scheme"] == scheme}
        drawn = sorted(distinct, key=lambda p: content_hash(3, "report", *p))[:20]
        table = sample_table(page, scheme)
        assert table.count("<tr>") == 1 + len(drawn)
        for parts in drawn:
            assert html.escape(parts[0]) in table and html.escape(parts[1]) in table


def test_every_text_is_html_escaped(corpus):
    page = report.render(str(corpus / "corpus"), samples=10_000)
    assert HOSTILE not in page and "<script>" not in page and "<b>答案" not in page
    assert html.escape(HOSTILE) in sample_table(page, "qa")
    assert "hand-&lt;1&gt;" in page


def test_errors_are_reported(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    assert "_manifest.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report.main([str(tmp_path), "--samples=-1"])


def test_mismatched_manifest_is_refused(corpus, tmp_path):
    manifest = read_json(str(corpus / "corpus" / "_manifest.json"))
    manifest["total_rows"] += 1
    for shard in manifest["shards"]:
        (tmp_path / shard["file"]).write_bytes((corpus / "corpus" / shard["file"]).read_bytes())
    (tmp_path / "_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ValueError, match="the manifest says"):
        report.render(str(tmp_path))


def test_build_report_prints_the_overview(corpus, capsys):
    path = report.build_report(str(corpus / "corpus"))
    printed = capsys.readouterr().out.splitlines()
    manifest = read_json(str(corpus / "corpus" / "_manifest.json"))
    assert path.endswith("_report.html")
    assert printed[0].startswith(f"{manifest['total_rows']:,} rows")
    assert printed[1].split()[:2] == ["scheme", "pairs"]
    assert {line.split()[0]: int(line.split()[1].replace(",", "")) for line in printed[2:]} == \
        manifest["rows_per_scheme"]
