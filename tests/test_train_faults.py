"""Trainer faults (issue 13, item 11): bad rows and files fail before step 1 naming them,
corrupt checkpoints are named or skipped, failed writes say what and where, failed starts leave
nothing that blocks a rerun, and user errors are one line."""

import json
import os
import resource
import signal
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model import RoFormerSim
from model.train import Trainer, main, read_metrics
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def pairs(lcqmc_positives):
    """64 real LCQMC positives (label 1) as (text_a, text_b) lists."""
    return [a for a, _ in lcqmc_positives[:64]], [b for _, b in lcqmc_positives[:64]]


@pytest.fixture(scope="module")
def shard(tmp_path_factory, pairs):
    path = tmp_path_factory.mktemp("pairs") / "train-0.parquet"
    pq.write_table(pa.table({"text_a": pairs[0], "text_b": pairs[1]}), path)
    return path


def args(data, vocab, output, *extra):
    return ["--data", str(data), "--output", str(output), "--config", "tiny", "--vocab",
            str(vocab), "--batch_size", "8", "--maxlen", "16", "--num_workers", "0",
            "--no_progress", "--seed", "3", *map(str, extra)]


def test_null_text_fails_before_step_1_naming_file_and_row(pairs, vocab, tmp_path):
    texts_b = list(pairs[1])
    texts_b[37] = None
    data = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text_a": pairs[0], "text_b": texts_b}), data)
    with pytest.raises(SystemExit, match=f"shard {data}: null text_b in row 37"):
        main(args(data, vocab, tmp_path / "run", "--steps", 20))
    assert not (tmp_path / "run").exists()


def test_shards_of_only_blank_texts_are_refused(vocab, tmp_path):
    data = tmp_path / "blank.parquet"
    pq.write_table(pa.table({"text_a": ["", " "] * 8, "text_b": ["", "\t"] * 8}), data)
    with pytest.raises(SystemExit, match="every row .* has a blank text_a or text_b"):
        main(args(data, vocab, tmp_path / "run", "--steps", 1))
    assert not (tmp_path / "run").exists()


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_weights_are_named(shard, vocab, tmp_path):
    """--init (and every loader that goes through RoFormerSim.from_pretrained: generate,
    encode, evaluate) names the truncated file."""
    init = main(args(shard, vocab, tmp_path / "first", "--steps", 1))
    truncate(init / "model.safetensors")
    with pytest.raises(ValueError, match=f"{init / 'model.safetensors'}: truncated or corrupt"):
        RoFormerSim.from_pretrained(init)
    with pytest.raises(SystemExit, match=f"{init / 'model.safetensors'}: truncated or corrupt"):
        main(args(shard, vocab, tmp_path / "second", "--steps", 1, "--init", init))


def test_resume_skips_a_corrupt_newest_checkpoint_and_says_so(shard, vocab, tmp_path, capsys):
    main(args(shard, vocab, tmp_path / "full", "--steps", 6))
    run = tmp_path / "run"
    main(args(shard, vocab, run, "--steps", 4, "--save_every", 2))
    truncate(run / "checkpoint-4" / "model.safetensors")
    capsys.readouterr()
    main(args(shard, vocab, run, "--steps", 6, "--save_every", 2, "--resume"))
    err = capsys.readouterr().err
    assert f"skipping unreadable {run / 'checkpoint-4'}" in err
    assert f"resuming from {run / 'checkpoint-2'}, the newest intact checkpoint" in err
    got, expected = read_metrics(run), read_metrics(tmp_path / "full")
    assert [r["step"] for r in got] == list(range(1, 7))
    for g, e in zip(got, expected, strict=True):
        assert g["loss"] == pytest.approx(e["loss"], abs=1e-6)


def test_resume_with_only_corrupt_checkpoints_is_refused(shard, vocab, tmp_path):
    run = tmp_path / "run"
    main(args(shard, vocab, run, "--steps", 2, "--save_every", 2))
    (run / "checkpoint-2" / "trainer_state.pt").write_bytes(b"not a zip")
    with pytest.raises(SystemExit, match="none of its 1 checkpoint"):
        main(args(shard, vocab, run, "--steps", 4, "--resume"))


def test_disk_full_says_what_failed_and_where(shard, vocab, tmp_path):
    """Writes above RLIMIT_FSIZE fail with EFBIG as on a full disk: the checkpoint write fails
    with one line naming the checkpoint, and no half-written checkpoint is left."""
    run = tmp_path / "run"

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # the weights are 1.7 MB

    proc = subprocess.run([sys.executable, "-m", "model.train",
                           *args(shard, vocab, run, "--steps", 2, "--save_every", 1)],
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"model.train: error: cannot write {run / 'checkpoint-1'}"), last
    assert "File too large" in last and "Traceback" not in proc.stderr
    assert not list(run.glob("checkpoint-*")) and not list(run.glob(".tmp-*"))


def test_unknown_config_leaves_no_run_dir(shard, vocab, tmp_path):
    with pytest.raises(SystemExit, match="--config nosuch"):
        main(args(shard, vocab, tmp_path / "run", "--steps", 1, "--config", "nosuch"))
    assert not (tmp_path / "run").exists()


def test_crash_before_step_1_does_not_block_a_plain_rerun(shard, vocab, tmp_path, monkeypatch):
    def fail(self, batch):
        raise RuntimeError("killed in the first step")

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", fail)
        with pytest.raises(RuntimeError, match="first step"):
            main(args(shard, vocab, run, "--steps", 1))
    assert main(args(shard, vocab, run, "--steps", 1)) == run / "final"
    assert len(read_metrics(run)) == 1


def test_resume_with_changed_config_is_refused(shard, vocab, tmp_path):
    main(args(shard, vocab, tmp_path / "run", "--steps", 2, "--save_every", 1))
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"vocab_size": 100, "hidden_size": 16, "num_layers": 1,
                                  "num_heads": 2, "intermediate_size": 32}))
    with pytest.raises(SystemExit, match="--config tiny → .*small.json"):
        main(args(shard, vocab, tmp_path / "run", "--steps", 4, "--resume", "--config", config))


def test_user_errors_are_one_line_from_the_cli(shard, vocab, tmp_path):
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    proc = subprocess.run([sys.executable, "-m", "model.train",
                           *args(shard, vocab, tmp_path / "run", "--steps", 1,
                                 "--config", broken)],
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"model.train: error: --config {broken}: not a model config "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"]
    assert not (tmp_path / "run").exists()


def test_trainer_helpers_raise_errors_not_exits(shard, vocab, tmp_path):
    """Only ``main`` turns errors into exit codes: ``run`` raises ValueError / OSError."""
    from model.train import run
    from model.train_config import parse_config

    with pytest.raises(FileNotFoundError, match="--vocab"):
        run(parse_config(args(shard, tmp_path / "nosuch.txt", tmp_path / "run")))
    with pytest.raises(ValueError, match="--grad_accum 3"):
        run(parse_config(args(shard, vocab, tmp_path / "run", "--grad_accum", 3)))


@pytest.mark.parametrize("maxlen", [0, 1])
def test_maxlen_below_cls_sep_is_refused_before_step_1(shard, vocab, tmp_path, maxlen):
    """Probe: ``--maxlen 0`` passed the checks and failed in the data loader with a traceback
    (``maxlen must be at least 3``)."""
    with pytest.raises(SystemExit, match=rf"model.train: error: --maxlen must be ≥ 2 .*{maxlen}"):
        main(args(shard, vocab, tmp_path / "run", "--steps", 1, "--maxlen", maxlen))
    assert not (tmp_path / "run").exists()


def test_a_bad_metrics_line_before_the_last_is_named_not_a_silent_end(tmp_path):
    """Probe: ``read_metrics`` stopped at the first bad line, so every record after it was
    dropped, and a resume (``truncate_metrics``) rewrote metrics.jsonl without them."""
    from model.metrics import METRICS_FILE, truncate_metrics

    records = [json.dumps({"step": step, "loss": 1.0 / step}) for step in (1, 2, 3)]
    path = tmp_path / METRICS_FILE
    path.write_text(records[0] + "\n{torn\n" + "\n".join(records[1:]) + "\n", encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ValueError, match=rf"{METRICS_FILE}:2: not a JSON record"):
        read_metrics(tmp_path)
    with pytest.raises(ValueError, match=":2: not a JSON record"):
        truncate_metrics(tmp_path, 3)
    assert path.read_bytes() == before
    path.write_text("\n".join(records) + '\n{"step": 4, "lo', encoding="utf-8")
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]  # a torn last line


@pytest.mark.parametrize("data, message", [(b"", "vocab_file {} is empty"),
                                           (b"[PAD]\n[UNK]\ncaf\xe9\n", "{}:3: invalid UTF-8")])
def test_a_bad_vocab_is_named_before_a_run_dir_is_made(shard, tmp_path, data, message):
    """Probe: a non-UTF-8 ``--vocab`` failed with a bare ``'utf-8' codec can't decode`` (no
    file), an empty one named the copy in the run dir it had already made."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(data)
    with pytest.raises(SystemExit, match=rf"model.train: error: --vocab: "
                                         rf"{message.format(vocab)}"):
        main(args(shard, vocab, tmp_path / "run", "--steps", 1))
    assert not (tmp_path / "run").exists()
