"""The trainer end to end on CPU: real pairs → tiny model, resume exactness, GradCache, stage 2."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from model import RoFormerSim, RoFormerSimConfig, Tokenizer
from model.data import PairCollator
from model.train import TrainConfig, Trainer, main, read_metrics
from tests.conftest import REPO

LOSS_KEYS = ("loss", "loss_gen", "loss_sim", "grad_norm", "lr")


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory, lcqmc_positives):
    """Two pair shards of real LCQMC positives (label 1), in the pair Parquet schema."""
    positives = lcqmc_positives[:240]
    table = pa.table({
        "text_a": [r[0] for r in positives],
        "text_b": [r[1] for r in positives],
        "score": pa.array([1.0] * len(positives), pa.float32()),
        "scheme": ["question"] * len(positives),
        "group_id": [f"lcqmc-{i}" for i in range(len(positives))],
    })
    out = tmp_path_factory.mktemp("pairs")
    pq.write_table(table.slice(0, 120), out / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(120), out / "train-00001-of-00002.parquet")
    return out


def train_args(pairs_dir, vocab, output, *extra):
    return ["--data", str(pairs_dir / "train-*.parquet"), "--output", str(output),
            "--config", "tiny", "--vocab", str(vocab), "--batch_size", "8", "--lr", "1e-3",
            "--num_workers", "0", "--no_progress", "--seed", "7", *map(str, extra)]


def losses(run_dir):
    return [{k: r[k] for k in LOSS_KEYS} for r in read_metrics(run_dir)]


def assert_curves_equal(got, expected):
    assert [r["lr"] for r in got] == [r["lr"] for r in expected]
    for g, e in zip(got, expected, strict=True):
        for key in ("loss", "loss_gen", "loss_sim", "grad_norm"):
            assert g[key] == pytest.approx(e[key], abs=1e-6), (key, g, e)


def test_stage1_end_to_end_loss_decreases_and_checkpoint_reloads(pairs_dir, vocab, tmp_path):
    run = tmp_path / "run"
    final = main(train_args(pairs_dir, vocab, run, "--steps", 30, "--save_every", 10,
                            "--keep", 2))
    records = read_metrics(run)
    assert [r["step"] for r in records] == list(range(1, 31))
    assert {"step", "loss", "loss_gen", "loss_sim", "lr", "tokens_per_s"} <= set(records[0])
    first = sum(r["loss"] for r in records[:5]) / 5
    last = sum(r["loss"] for r in records[-5:]) / 5
    assert last < first - 0.5, (first, last)

    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-20", "checkpoint-30"]
    assert final == run / "final"
    model = RoFormerSim.from_pretrained(final)
    assert (final / "vocab.txt").read_bytes() == vocab.read_bytes()
    assert model.config.vocab_size == Tokenizer(vocab).vocab_size
    assert model.config.dropout == 0.2
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
def test_bundled_samples_to_checkpoint(tmp_path):
    """The README path: ``pipelines.build_all`` on the bundled samples, then 30 training steps."""
    subprocess.run([sys.executable, "-m", "pipelines.build_all", "--output", str(tmp_path / "out")],
                   cwd=REPO, check=True, capture_output=True)
    run = tmp_path / "run"
    final = main(["--data", str(tmp_path / "out" / "corpus"), "--output", str(run),
                  "--config", "tiny", "--steps", "30", "--batch_size", "16", "--lr", "1e-3",
                  "--num_workers", "0", "--no_progress"])
    records = read_metrics(run)
    assert len(records) == 30
    assert sum(r["loss"] for r in records[-5:]) < sum(r["loss"] for r in records[:5])
    assert RoFormerSim.from_pretrained(final).config.vocab_size == len(
        (final / "vocab.txt").read_text(encoding="utf-8").splitlines())


def test_resume_after_sigkill_reproduces_uninterrupted_curve(pairs_dir, vocab, tmp_path):
    extra = ("--steps", 12, "--save_every", 3, "--grad_accum", 2, "--num_workers", 1)
    main(train_args(pairs_dir, vocab, tmp_path / "full", *extra))
    expected = losses(tmp_path / "full")

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "model.train",
                             *train_args(pairs_dir, vocab, killed, *extra)],
                            cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint-3" / "trainer_state.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    proc.stderr.close()
    assert not (killed / "final").exists()

    main(train_args(pairs_dir, vocab, killed, *extra, "--resume"))
    assert_curves_equal(losses(killed), expected)
    full = RoFormerSim.from_pretrained(tmp_path / "full" / "final").state_dict()
    resumed = RoFormerSim.from_pretrained(killed / "final").state_dict()
    for name, tensor in full.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)


def test_resume_from_last_checkpoint_continues_exactly(pairs_dir, vocab, tmp_path):
    main(train_args(pairs_dir, vocab, tmp_path / "full", "--steps", 6))
    main(train_args(pairs_dir, vocab, tmp_path / "split", "--steps", 4, "--save_every", 2))
    with pytest.raises(SystemExit, match="--batch_size 8 → 4"):
        main(train_args(pairs_dir, vocab, tmp_path / "split", "--steps", 6, "--resume",
                        "--batch_size", 4))
    main(train_args(pairs_dir, vocab, tmp_path / "split", "--steps", 6, "--resume"))
    assert_curves_equal(losses(tmp_path / "split"), losses(tmp_path / "full"))


def tiny_batch(pairs_dir, vocab, n_rows):
    tokenizer = Tokenizer(vocab)
    table = pq.read_table(sorted(pairs_dir.glob("*.parquet"))[0])
    rows = []
    for a, b in zip(table["text_a"].to_pylist()[: n_rows // 2], table["text_b"].to_pylist()):
        rows += [(a, b), (b, a)]
    return PairCollator(tokenizer, maxlen=16)(rows), tokenizer


@pytest.mark.parametrize("grad_accum", [2, 4])
def test_gradcache_gradients_equal_full_batch(pairs_dir, vocab, grad_accum):
    batch, tokenizer = tiny_batch(pairs_dir, vocab, 16)
    torch.manual_seed(0)
    model = RoFormerSim(RoFormerSimConfig.preset(
        "tiny", vocab_size=tokenizer.vocab_size, dropout=0.0, attention_dropout=0.0))

    def gradients(k):
        config = TrainConfig(["x"], Path("x"), grad_accum=k, batch_size=16)
        trainer = Trainer(model, config, torch.device("cpu"), "fp32")
        model.zero_grad(set_to_none=True)
        loss_gen, loss_sim = trainer.backward(batch)
        return loss_gen + loss_sim, {n: p.grad.clone() for n, p in model.named_parameters()}

    full_loss, full = gradients(1)
    cached_loss, cached = gradients(grad_accum)
    assert cached_loss.item() == pytest.approx(full_loss.item(), abs=1e-5)
    for name, grad in full.items():
        torch.testing.assert_close(cached[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_stage2_distils_from_frozen_teacher(pairs_dir, vocab, shared_data, tmp_path):
    """Student from a stage-1 checkpoint; the teacher has its own (BERT) vocabulary."""
    stage1 = main(train_args(pairs_dir, vocab, tmp_path / "s1", "--steps", 2))
    teacher_dir = tmp_path / "teacher"
    bert_vocab = shared_data / "vocab" / "bert-base-chinese" / "vocab.txt"
    torch.manual_seed(1)
    teacher = RoFormerSim(RoFormerSimConfig.preset(
        "tiny", vocab_size=Tokenizer(bert_vocab).vocab_size, hidden_size=48, num_heads=2))
    teacher.save_pretrained(teacher_dir, vocab_file=bert_vocab)
    before = (teacher_dir / "model.safetensors").read_bytes()

    run = tmp_path / "s2"
    final = main(train_args(pairs_dir, vocab, run, "--steps", 4, "--stage", 2,
                            "--init", stage1, "--teacher", teacher_dir))
    records = read_metrics(run)
    assert len(records) == 4
    assert all(r["loss_sim"] > 0 and r["loss_gen"] > 0 for r in records)
    assert (teacher_dir / "model.safetensors").read_bytes() == before
    student = RoFormerSim.from_pretrained(final)
    assert student.config.hidden_size == 32


def test_teacher_is_frozen_and_in_eval_mode(pairs_dir, vocab, tmp_path):
    batch, tokenizer = tiny_batch(pairs_dir, vocab, 8)
    batch.update({f"teacher_{k}": v for k, v in batch.items()})
    torch.manual_seed(0)
    cfg = RoFormerSimConfig.preset("tiny", vocab_size=tokenizer.vocab_size)
    student, teacher = RoFormerSim(cfg), RoFormerSim(cfg).eval().requires_grad_(False)
    before = {n: p.clone() for n, p in teacher.state_dict().items()}
    config = TrainConfig(["x"], Path("x"), stage=2, teacher=Path("x"), batch_size=8)
    record = Trainer(student, config, torch.device("cpu"), "fp32", teacher).train_step(batch)
    assert record["loss_sim"] > 0
    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())
    for name, tensor in teacher.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_bf16_autocast_am_softmax_and_clipping_on_cpu(pairs_dir, vocab, tmp_path):
    main(train_args(pairs_dir, vocab, tmp_path / "bf16", "--steps", 2, "--precision", "bf16",
                    "--max_grad_norm", 1.0, "--sim_loss", "am_softmax"))
    records = read_metrics(tmp_path / "bf16")
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)


def write_shard(path, table):
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("case, message", [
    ("no_files", "matches no files"),
    ("wrong_schema", "column 'text_b' missing"),
    ("empty_shard", "no rows"),
    ("bad_manifest", "missing shards"),
])
def test_bad_data_fails_before_training(pairs_dir, vocab, tmp_path, case, message, capsys):
    data = tmp_path / "data"
    data.mkdir()
    good = pq.read_table(sorted(pairs_dir.glob("*.parquet"))[0])
    spec = str(data / "*.parquet")
    if case == "wrong_schema":
        write_shard(data / "a.parquet", good)
        write_shard(data / "b.parquet", pa.table({"text_a": ["问题"], "text": ["答案"]}))
    elif case == "empty_shard":
        write_shard(data / "a.parquet", good.slice(0, 0))
        write_shard(data / "b.parquet", good.slice(0, 0))
    elif case == "bad_manifest":
        spec = str(data / "manifest.json")
        (data / "manifest.json").write_text(json.dumps({"shards": ["train-0.parquet"]}))
    argv = train_args(pairs_dir, vocab, tmp_path / "run", "--steps", 1)
    argv[argv.index("--data") + 1] = spec
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert message in str(err.value)
    assert "--data" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_empty_shards_beside_rows_are_accepted(pairs_dir, vocab, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = pq.read_table(sorted(pairs_dir.glob("*.parquet"))[0])
    write_shard(data / "a.parquet", good)
    write_shard(data / "b.parquet", good.slice(0, 0))
    argv = train_args(pairs_dir, vocab, tmp_path / "run", "--steps", 1)
    argv[argv.index("--data") + 1] = str(data / "*.parquet")
    assert (main(argv) / "config.json").is_file()


def test_manifest_is_accepted(pairs_dir, vocab, tmp_path):
    shards = sorted(p.name for p in pairs_dir.glob("*.parquet"))
    manifest = pairs_dir / "manifest.json"
    manifest.write_text(json.dumps({"shards": shards}))
    try:
        argv = train_args(pairs_dir, vocab, tmp_path / "run", "--steps", 1)
        argv[argv.index("--data") + 1] = str(manifest)
        main(argv)
    finally:
        manifest.unlink()
    assert len(read_metrics(tmp_path / "run")) == 1


@pytest.mark.parametrize("extra, message", [
    (["--stage", "2"], "--teacher"),
    (["--batch_size", "7"], "--batch_size"),
    (["--batch_size", "12", "--grad_accum", "5"], "--grad_accum"),
    (["--precision", "fp16", "--device", "cpu"], "fp16"),
])
def test_inconsistent_options_are_rejected(pairs_dir, vocab, tmp_path, extra, message):
    with pytest.raises(SystemExit) as err:
        main(train_args(pairs_dir, vocab, tmp_path / "run", "--steps", 1, *extra))
    assert message in str(err.value)


def test_char_vocab_built_from_data_when_none_given(pairs_dir, vocab, tmp_path):
    argv = train_args(pairs_dir, vocab, tmp_path / "run", "--steps", 1, "--vocab_size", 500)
    del argv[argv.index("--vocab"): argv.index("--vocab") + 2]
    final = main(argv)
    built = (tmp_path / "run" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert built[:1] == ["[PAD]"] and "[MASK]" in built and len(built) <= 500
    assert (final / "vocab.txt").read_text(encoding="utf-8").splitlines() == built
    assert RoFormerSim.from_pretrained(final).config.vocab_size == len(built)


def test_existing_run_needs_resume(pairs_dir, vocab, tmp_path):
    main(train_args(pairs_dir, vocab, tmp_path / "run", "--steps", 1))
    with pytest.raises(SystemExit, match="--resume"):
        main(train_args(pairs_dir, vocab, tmp_path / "run", "--steps", 2))
