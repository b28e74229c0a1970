"""The trainer on 2 gloo ranks (CPU): gradients equal 1 rank's, exact resume after kill -9, a dead
rank ends the job, resuming with another world size is refused. Every process wait is bounded."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from model import RoFormerSim, RoFormerSimConfig, Tokenizer
from model.data import MANIFEST_FILE, PairCollator
from model.distributed import World
from model.train import TrainConfig, Trainer, main, read_metrics
from tests.conftest import REPO

WAIT_S = 180
VARIANTS = {  # name -> TrainConfig options of the 16-row global batch
    "stage1": {},
    "am_softmax": {"sim_loss": "am_softmax"},
    "stage1_grad_accum": {"grad_accum": 2},
    "stage2": {"stage": 2, "teacher": Path("teacher")},
}


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory, lcqmc_positives):
    """Train and valid shards of real LCQMC positives (label 1) and their manifest."""
    positives = lcqmc_positives[:192]
    table = pa.table({"text_a": [r[0] for r in positives], "text_b": [r[1] for r in positives]})
    out = tmp_path_factory.mktemp("pairs")
    shards = {"train-00000-of-00002.parquet": table.slice(0, 80),
              "train-00001-of-00002.parquet": table.slice(80, 80),
              "valid-00000-of-00001.parquet": table.slice(160)}
    for name, part in shards.items():
        pq.write_table(part, out / name, row_group_size=20)
    (out / MANIFEST_FILE).write_text(json.dumps({"shards": [
        {"file": name, "split": name.split("-")[0]} for name in shards]}))
    return out


def global_batch(pairs_dir, vocab):
    """16 rows (8 pairs, a→b and b→a), with the teacher's input equal to the student's."""
    table = pq.read_table(sorted(pairs_dir.glob("*.parquet"))[0])
    rows = []
    for a, b in zip(table["text_a"].to_pylist()[:8], table["text_b"].to_pylist()):
        rows += [(a, b), (b, a)]
    batch = PairCollator(Tokenizer(vocab), maxlen=16)(rows)
    batch.update({f"teacher_{k}": v for k, v in batch.items()})
    return batch


def models(vocab_size):
    torch.manual_seed(0)
    cfg = RoFormerSimConfig.preset("tiny", vocab_size=vocab_size, dropout=0.0,
                                   attention_dropout=0.0)
    student = RoFormerSim(cfg)
    teacher = RoFormerSim(RoFormerSimConfig(**{**cfg.to_dict(), "hidden_size": 48,
                                               "num_heads": 2}))
    return student, teacher.eval().requires_grad_(False)


def gradients(batch, student_state, teacher, world, name):
    """(loss_gen, loss_sim, {param: grad}) of one backward on this rank's share of ``batch``."""
    student = RoFormerSim(RoFormerSimConfig.preset(
        "tiny", vocab_size=teacher.config.vocab_size, dropout=0.0, attention_dropout=0.0))
    student.load_state_dict(student_state)
    config = TrainConfig(["x"], Path("x"), batch_size=16, **VARIANTS[name])
    trainer = Trainer(student, config, torch.device("cpu"), "fp32",
                      teacher if config.stage == 2 else None, world)
    rows = 16 // world.size
    mine = {k: v[world.rank * rows:(world.rank + 1) * rows] for k, v in batch.items()}
    student.train()
    gen, sim = trainer.backward(mine)
    return gen.item(), sim.item(), {n: p.grad.clone() for n, p in student.named_parameters()}


def rank_worker(rank, store, batch, student_state, teacher, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))
    try:
        world = World(rank, 2)
        results = {name: gradients(batch, student_state, teacher, world, name)
                   for name in VARIANTS}
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def spawn(fn, args, nprocs=2):
    """Run ``fn(rank, *args)`` on ``nprocs`` spawned processes; a failure or WAIT_S without an
    end fails the test (the processes are killed, nothing hangs)."""
    context = mp.start_processes(fn, args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + WAIT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"ranks still running after {WAIT_S} s")


def test_two_ranks_reproduce_one_rank_gradients(pairs_dir, vocab, tmp_path):
    """One fixed global batch of 16 rows, dropout and noise off: the in-batch losses over the
    gathered rows and the DDP-averaged gradients equal one rank's (stage 1, AM-Softmax,
    GradCache on top, stage 2 distillation)."""
    batch = global_batch(pairs_dir, vocab)
    student, teacher = models(Tokenizer(vocab).vocab_size)
    state = {k: v.clone() for k, v in student.state_dict().items()}
    torch.set_num_threads(1)
    expected = {name: gradients(batch, state, teacher, World(), name) for name in VARIANTS}
    spawn(rank_worker, (str(tmp_path / "store"), batch, state, teacher, str(tmp_path)))
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for name, (gen, sim, grads) in expected.items():
            assert got[name][0] == pytest.approx(gen, abs=1e-5), (name, rank)
            assert got[name][1] == pytest.approx(sim, abs=1e-5), (name, rank)
            for param, grad in grads.items():
                torch.testing.assert_close(got[name][2][param], grad, atol=1e-5, rtol=1e-5,
                                           msg=f"{name} rank {rank} {param}")


def train_args(pairs_dir, vocab, output, *extra):
    return ["--data", str(pairs_dir), "--output", str(output),
            "--config", "tiny", "--vocab", str(vocab), "--batch_size", "8", "--lr", "1e-3",
            "--maxlen", "16", "--num_workers", "0", "--no_progress", "--seed", "7",
            "--dist_timeout", "60", *map(str, extra)]


def torchrun(args, nproc=2):
    """``torchrun --standalone --nproc_per_node N -m model.train ARGS`` as a new process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={nproc}", "-m", "model.train", *args],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc):
    """(returncode, stderr) of ``proc``, killing its whole group if it outlives WAIT_S."""
    try:
        _, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"torchrun still running after {WAIT_S} s: {proc.communicate()[1]}")
    return proc.returncode, err


def wait_for(path, proc):
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert proc.poll() is None, finish(proc)[1]
        assert time.monotonic() < deadline, f"no {path} within {WAIT_S} s"
        time.sleep(0.05)


def curve(run_dir):
    """Every record of ``metrics.jsonl`` but its timing."""
    return [{k: v for k, v in r.items() if k != "tokens_per_s"}
            for r in read_metrics(run_dir, None)]


def worker_of_rank(agent_pid, rank):
    """PID of the torchrun worker with ``RANK=rank`` among the children of ``agent_pid``."""
    children = Path(f"/proc/{agent_pid}/task/{agent_pid}/children").read_text().split()
    for pid in children:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no worker with RANK={rank} among {children}")


@pytest.mark.slow
def test_two_ranks_resume_after_kill_reproduces_uninterrupted_run(pairs_dir, vocab, sts_dev,
                                                                  tmp_path):
    """2 CPU ranks, GradCache and evaluation on: the job killed by SIGKILL after a checkpoint
    and resumed gives the uninterrupted loss curve, eval records and final weights; a dead rank
    ends the job naming it; resuming on 1 rank is refused."""
    extra = ("--steps", 8, "--save_every", 3, "--grad_accum", 2, "--eval_every", 4,
             "--sts_dev", sts_dev)  # 2 STS files: one per rank
    rc, err = finish(torchrun(train_args(pairs_dir, vocab, tmp_path / "full", *extra)))
    assert rc == 0, err
    expected = curve(tmp_path / "full")
    assert [(r["step"], r.get("kind")) for r in expected] == [
        *((s, None) for s in range(1, 5)), (4, "eval"), *((s, None) for s in range(5, 9)),
        (8, "eval")]
    assert {"sts_BQ", "sts_LCQMC", "valid_loss"} <= set(expected[4])

    killed = tmp_path / "killed"
    proc = torchrun(train_args(pairs_dir, vocab, killed, *extra))
    wait_for(killed / "checkpoint-3" / "trainer_state.pt", proc)
    os.kill(worker_of_rank(proc.pid, 1), signal.SIGKILL)
    rc, err = finish(proc)
    assert rc != 0 and re.search(r"rank\s*: 1 \(local_rank: 1\)\s*exitcode\s*: -9", err), err
    assert not (killed / "final").exists()

    with pytest.raises(SystemExit, match=r"written by 2 rank\(s\), this job has 1"):
        main(train_args(pairs_dir, vocab, killed, *extra, "--resume"))

    rc, err = finish(torchrun(train_args(pairs_dir, vocab, killed, *extra, "--resume")))
    assert rc == 0, err
    for got, want in zip(curve(killed), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    full = RoFormerSim.from_pretrained(tmp_path / "full" / "final").state_dict()
    resumed = RoFormerSim.from_pretrained(killed / "final").state_dict()
    for name, tensor in full.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)
