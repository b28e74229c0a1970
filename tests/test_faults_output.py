"""Faults of outputs, options and first use (issue 13, items 3, 6, 9, 13-19): each test fails on
the code before the fix. The table of what each fault gets is docs/reliability.md."""

import logging
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import WorkerOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from matplotlib import font_manager
from test_build_corpus import real_pair_rows, write_parts

from pipelines import build_all, build_corpus, corpus, io, qa_pairs, report
from pipelines.io import WritePairs, read_pairs
from pipelines.job import configure_logging, main
from pipelines.options import make_pipeline, parse_options
from pipelines.schema import PAIR_SCHEMA

REPO = Path(__file__).resolve().parents[1]
QA_SAMPLE = REPO / "pipelines" / "data" / "qa_sample.jsonl"


def run_qa(output, *extra):
    return qa_pairs.run(["--input", str(QA_SAMPLE), "--output", str(output),
                         "--runner=FnApiRunner", *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() if p.is_file() else "folder" for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def qa_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "qa"
    run_qa(out)
    return out


@pytest.fixture(scope="module")
def corpus_out(shared_data, tmp_path_factory):
    """A balanced corpus (with its report) of real question and document pair rows."""
    base = tmp_path_factory.mktemp("faults-corpus")
    write_parts(base / "question", real_pair_rows(shared_data, "question", 40), 2)
    write_parts(base / "doc", real_pair_rows(shared_data, "doc", 30), 2)
    argv = ["--question", str(base / "question"), "--general", str(base / "doc"),
            "--output", str(base / "corpus"), "--runner=FnApiRunner", "--num_shards=2"]
    build_corpus.run(argv)
    assert report.main([str(base / "corpus")]) == 0
    return base / "corpus", argv


def _fail_write(*args):
    raise RuntimeError("injected failure while writing a shard")


def _fail_manifest(*args):
    raise RuntimeError("injected failure while writing the manifest")


# 3. A failed or killed rerun keeps the earlier output.
def test_failed_rerun_leaves_the_earlier_output_intact(qa_out, corpus_out, monkeypatch, caplog):
    before = snapshot(qa_out)
    monkeypatch.setattr(io, "write_parquet", _fail_write, raising=False)
    with pytest.raises(RuntimeError, match="injected"):
        run_qa(qa_out, "--num_shards=2")
    assert snapshot(qa_out) == before
    monkeypatch.undo()
    assert "the earlier output in" in caplog.text
    folder, argv = corpus_out
    before = snapshot(folder)
    monkeypatch.setattr(corpus, "_write_manifest", _fail_manifest)
    with pytest.raises(RuntimeError, match="injected"):
        build_corpus.run([*argv, "--num_shards=3"])
    assert snapshot(folder) == before


@pytest.mark.slow
def test_killed_rerun_leaves_the_earlier_output_intact_and_the_next_run_cleans_up(qa_out,
                                                                                    tmp_path):
    out = tmp_path / "qa"
    out.mkdir()
    for name, data in snapshot(qa_out).items():
        (out / name).write_bytes(data)
    before = snapshot(out)
    script = (
        "import dataclasses, os, signal, sys\n"
        "from pipelines import qa_pairs\nfrom pipelines.job import run_job\n"
        "def die(obj):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        "run_job(sys.argv[1:], dataclasses.replace(qa_pairs.JOB, to_group=die))\n")
    done = subprocess.run([sys.executable, "-c", script, "--input", str(QA_SAMPLE), "--output",
                           str(out), "--num_shards=2"], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert {k: v for k, v in snapshot(out).items() if k != "_staging"} == before
    assert read_pairs(str(out)).num_rows == read_pairs(str(qa_out)).num_rows
    run_qa(out, "--num_shards=2")
    assert "_staging" not in snapshot(out)
    assert len(list(out.glob("pairs-*-of-00002.parquet"))) == 2


# 6. Unknown options are refused, naming them; Beam's own options pass.
@pytest.mark.parametrize("argv, named", [(["--ouptut", "x"], "--ouptut"),
                                         (["--hihg", "0.45"], "--hihg 0.45"),
                                         (["stray"], "stray")])
def test_unknown_options_exit_2_naming_them_in_every_cli(argv, named, capsys):
    for parse in (lambda a: parse_options(a, "test", prog="python -m pipelines.qa_pairs"),
                  build_corpus.parse_settings, build_all.main):
        with pytest.raises(SystemExit) as exit_info:
            parse(argv)
        assert exit_info.value.code == 2
        assert f"unrecognized arguments: {named}" in capsys.readouterr().err
    beam_options = ["--runner=DirectRunner", "--direct_num_workers=2", "--project", "p-1",
                    "--setup_file=./setup.py", "--temp_location=gs://b/t", "--log_level=info"]
    assert parse_options(beam_options, "test").get_all_options()["project"] == "p-1"


# Probe: an empty path ran on the default (``--output ""`` wrote into out/qa, ``--input ""``
# read the bundled sample); an unknown --runner was a traceback. Both are one line, exit 2.
@pytest.mark.parametrize("argv", [["--output", ""], ["--input", " "], ["--question", ""]])
def test_empty_paths_are_refused_in_every_cli(argv, capsys):
    parsers = [build_corpus.parse_settings]
    if argv[0] != "--question":
        parsers.append(lambda a: parse_options(a, "test", prog="python -m pipelines.qa_pairs"))
    for parse in parsers:
        with pytest.raises(SystemExit) as exit_info:
            parse(argv)
        assert exit_info.value.code == 2
        assert f"argument {argv[0]}: must not be empty" in capsys.readouterr().err


def test_build_all_output_a_file_or_empty_is_one_line(tmp_path, capsys):
    """Probe: ``build_all --output FILE`` was an ``OutputError`` traceback; ``--output ""``
    would write ``/qa``, ``/doc``, ... at the file system's root."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert build_all.main(["--output", str(blocker)]) == 2
    assert f"error: --output {blocker}/qa: {blocker} is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        build_all.main(["--output", ""])
    assert exit_info.value.code == 2
    assert "argument --output: must not be empty" in capsys.readouterr().err


def test_an_unknown_runner_is_one_line(corpus_out, tmp_path, capsys):
    base = corpus_out[0].parent
    runs = ((qa_pairs.run, ["--input", str(QA_SAMPLE)]),
            (build_corpus.run, ["--question", str(base / "question"), "--general",
                                str(base / "doc")]))
    for run, argv in runs:
        assert main(run, [*argv, "--output", str(tmp_path / "out"), "--runner", "NoSuch"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --runner: Unexpected pipeline runner: NoSuch")
        assert err.count("\n") == 1


# Probe: a side file cut short or a truncated shard was a traceback (build_corpus) or a message
# naming no file ("Could not open Parquet input source '<Buffer>'", report).
def test_corrupt_side_files_and_shards_are_one_line_naming_the_file(corpus_out, tmp_path,
                                                                   capsys):
    folder, base = corpus_out[0], corpus_out[0].parent
    broken = tmp_path / "corpus"
    shutil.copytree(folder, broken)
    (broken / "_manifest.json").write_text('{"shards": [')
    assert report.main([str(broken)]) == 2
    assert capsys.readouterr().err == (f"error: {broken}/_manifest.json: not valid JSON "
                                       "(Expecting value: line 1 column 13 (char 12))\n")
    shutil.copy(folder / "_manifest.json", broken / "_manifest.json")
    shard = sorted(broken.glob("train-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:-40])
    assert report.main([str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shard}: not a readable shard (ArrowInvalid: ")
    assert err.count("\n") == 1
    question = tmp_path / "question"
    shutil.copytree(base / "question", question)
    (question / "_summary.json").write_bytes(b"\xff")
    argv = ["--question", str(question), "--general", str(base / "doc"), "--output",
            str(tmp_path / "out")]
    assert main(build_corpus.run, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {question}/_summary.json: not valid JSON (")
    assert err.count("\n") == 1 and not list(tmp_path.glob("out/train-*"))


# 9. An output that cannot be written is one clear line, before any input is read.
def test_unwritable_output_is_one_line_before_reading(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    unwritable = Path("/proc/simpairs-out")  # even root cannot make a folder there
    for output, problem in ((blocker, "is an existing file"), (blocker / "x", "is a file"),
                            (unwritable, "cannot write there")):
        assert main(qa_pairs.run, ["--input", str(QA_SAMPLE), "--output", str(output)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--output {output}" in err and problem in err
        missing = ["--question", str(tmp_path / "none"), "--general", str(tmp_path / "none"),
                   "--output", str(output)]
        assert main(build_corpus.run, missing) == 2  # the inputs do not exist: not read yet
        assert f"--output {output}" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"


# 13. An output folder reads as a Parquet dataset in pyarrow, pandas and DuckDB.
def test_output_folders_read_as_parquet_datasets(qa_out, corpus_out):
    pairs = read_pairs(str(qa_out))
    assert pairs.column("text_a").num_chunks == 1 and pairs.num_rows > 0
    assert {p.name for p in qa_out.iterdir()} >= {"_summary.json",
                                                  "_rejected-00000-of-00001.jsonl"}
    dataset = ds.dataset(str(qa_out), format="parquet")
    assert sorted(dataset.to_table().to_pylist(), key=str) == sorted(pairs.to_pylist(), key=str)
    query = f"select count(*) from read_parquet('{qa_out}/*.parquet')"
    assert duckdb.connect().execute(query).fetchone()[0] == pairs.num_rows
    folder, _ = corpus_out
    assert {"_manifest.json", "_report.html"} <= {p.name for p in folder.iterdir()}
    assert ds.dataset(str(folder), format="parquet").count_rows() == 60
    assert ds.dataset(str(folder), format="parquet").schema.remove_metadata() == PAIR_SCHEMA


# 14. Every README command is pasteable: it parses as written; its outputs are git-ignored.
def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.extend(shlex.split(part) for part in re.split(r"&&", line))
    return commands


def test_readme_commands_parse_as_written_and_their_outputs_are_ignored():
    pipelines_commands = [c for c in readme_commands()
                          if c[:2] == ["python", "-m"] and c[2].startswith("pipelines.")]
    assert len(pipelines_commands) >= 8
    for command in pipelines_commands:
        module, argv = command[2], command[3:]
        assert not any(arg.startswith("[") or arg.endswith("]") for arg in argv), command
        if module in ("pipelines.qa_pairs", "pipelines.doc_pairs", "pipelines.question_pairs"):
            parse_options(argv, "readme")
        elif module == "pipelines.build_corpus":
            build_corpus.parse_settings(argv)
        for arg in argv:
            assert not arg.startswith("data/"), f"{command}: no data/ folder in the checkout"
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    for written in ("results.json", "vectors.npy", "sentences.txt", "vocab.txt"):
        assert any(written in line for line in ignored), written


# 15. Quiet by default: no Beam notice, no progress lines; --log_level for more.
def test_commands_are_quiet_by_default():
    done = subprocess.run([sys.executable, "-m", "pipelines.qa_pairs", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    options = parse_options(["--runner=FnApiRunner"], "test")
    configure_logging(options)
    assert not logging.getLogger("pipelines").isEnabledFor(logging.INFO)
    worker = make_pipeline(options).options.view_as(WorkerOptions)  # SDK worker processes
    assert worker.default_sdk_harness_log_level == "WARNING"
    assert worker.sdk_harness_log_level_overrides["apache_beam.options.pipeline_options"] == "ERROR"
    configure_logging(parse_options(["--log_level=INFO"], "test"))
    assert logging.getLogger("pipelines").isEnabledFor(logging.INFO)
    configure_logging(parse_options([], "test"))


@pytest.mark.slow
def test_multi_process_runner_prints_no_worker_chatter(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.doc_pairs", "--output", str(tmp_path / "doc"),
         "--runner=FnApiRunner", "--direct_num_workers=2",
         "--direct_running_mode=multi_processing"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # what is left: each worker's first line, logged before it has read any option
    assert [line for line in done.stderr.splitlines()
            if "Logging handler created" not in line and "apitools" not in line] == []


# 16. Chinese renders in the report: a CJK font stack in the CSS, a CJK font in the figures.
def test_report_names_cjk_fonts_and_matplotlib_picks_an_installed_one(corpus_out, monkeypatch):
    folder, _ = corpus_out
    page = (folder / "_report.html").read_text(encoding="utf-8")
    css = re.search(r"body\{font-family:([^;]*);", page).group(1)
    assert css.startswith('"Noto Sans CJK SC"') and css.endswith(",sans-serif")
    fake = font_manager.FontEntry(fname="/fonts/NotoSansCJK.ttc", name="Noto Sans CJK JP")
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [*font_manager.fontManager.ttflist, fake])
    assert report.cjk_font() == "Noto Sans CJK JP"


# 17. --help names the command as it is typed and lists the choices.
def test_help_shows_python_m_usage_full_description_and_variant_choices(capsys):
    for module, run in (("qa_pairs", lambda a: main(qa_pairs.run, a)),
                        ("build_corpus", lambda a: main(build_corpus.run, a)),
                        ("build_all", build_all.main), ("report", report.main)):
        with pytest.raises(SystemExit):
            run(["--help"])
        out = capsys.readouterr().out
        assert out.startswith(f"usage: python -m pipelines.{module} "), out[:80]
        if module == "build_all":
            assert "from the bundled real samples." in " ".join(out.split())
        if module == "qa_pairs":
            assert "{default,set,multiset,bigram,uni_bigram}" in out
            assert "default: 'default', i.e. multiset" in " ".join(out.split())


# 18. The oldest Python the package claims is one it runs on (datetime.UTC needs 3.11).
def test_python_requires_is_the_oldest_version_the_code_runs_on():
    setup = (REPO / "setup.py").read_text(encoding="utf-8")
    claimed = re.search(r'python_requires=">=(\d+)\.(\d+)"', setup).groups()
    assert tuple(map(int, claimed)) == (3, 11)
    assert 'target-version = "py311"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


# 19. Pair shards are balanced and the same rows give byte-identical shards.
def write_shards(rows, out, num_shards=4):
    with BeamTestPipeline(runner="FnApiRunner") as p:
        p | beam.Create(rows) | WritePairs(str(out), num_shards=num_shards)
    return {path.name: path.read_bytes() for path in sorted(out.glob("pairs-*.parquet"))}


def test_pair_shards_are_balanced_and_byte_identical_across_runs(tmp_path):
    rows = [{"text_a": f"句子{k}甲", "text_b": f"句子{k}乙", "score": 0.5, "scheme": "doc",
             "group_id": f"g{k % 7}"} for k in range(400)]
    first = write_shards(rows, tmp_path / "one")
    assert first == write_shards(rows[::-1], tmp_path / "two")
    counts = [pq.ParquetFile(tmp_path / "one" / name).metadata.num_rows for name in first]
    assert len(counts) == 4 and sum(counts) == 400
    assert all(60 <= n <= 140 for n in counts), counts  # 100 ± 4.6 sigma
    assert list(write_shards(rows, tmp_path / "auto", num_shards=0)) == [
        "pairs-00000-of-00001.parquet"]  # 0: one shard per SHARD_ROWS rows
