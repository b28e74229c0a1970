"""Train RoFormer-Sim on pair shards: stage 1 (generation + contrastive), stage 2 (distillation).

    python -m model.train --data 'out/corpus/train-*.parquet' --output runs/sim --config small
    python -m model.train --data out/corpus/manifest.json --output runs/sim2 --stage 2 \\
        --init runs/sim/final --teacher teacher_dir

Losses (RoFormer-Sim, kexue.fm/archives/8454; reference ZhuiyiTechnology/roformer-sim
``train/stage1.py`` and ``train/stage2.py``), on a batch of rows [CLS] a [SEP] b [SEP] under the
UniLM mask, where rows 2k and 2k+1 are the same pair in both directions and segment a carries
BART-style noise:

* stage 1: ``L = L_gen + L_sim``, L_gen the seq2seq cross-entropy on segment b, L_sim the
  in-batch contrastive loss on the pooled [CLS] vectors (positive of row 2k is row 2k+1);
* stage 2: ``L = L_gen + L_sim``, L_sim = λ/B² Σᵢⱼ (cos(uᵢ,uⱼ) − cos(vᵢ,vⱼ))², λ = 100,
  u from a frozen teacher (eval mode, no grad) reading the clean text a of each row alone.

With ``--grad_accum K`` the batch is split into K micro-batches and L_sim still spans the whole
batch (GradCache, ``model.gradcache``). Run layout: ``OUTPUT/checkpoint-STEP/`` (the newest
``--keep`` kept), ``OUTPUT/final/``, ``OUTPUT/metrics.jsonl`` (one JSON object per step),
``OUTPUT/args.json`` and ``OUTPUT/vocab.txt``. ``--resume`` continues from the newest complete
checkpoint and reproduces the uninterrupted run exactly (same model, optimizer, scheduler,
scaler, RNG and data position).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from model.checkpoint import (
    clean_temporaries,
    latest_checkpoint,
    load_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_atomically,
)
from model.data import PairCollator, PairLoader, PairStream, open_shard, resolve_shards
from model.gradcache import cached_backward
from model.losses import am_softmax_loss, contrastive_loss, distill_loss, seq2seq_targets
from model.noise import BartNoise
from model.roformer import VOCAB_FILE, RoFormerSim, RoFormerSimConfig
from model.tokenizer import Tokenizer
from model.vocab import build_vocab, write_vocab

PRESETS = ("tiny", "small", "base")
SIM_LOSSES = {"contrastive": contrastive_loss, "am_softmax": am_softmax_loss}
METRICS_FILE = "metrics.jsonl"


def build_parser() -> argparse.ArgumentParser:
    """The CLI; defaults follow the reference recipe (see README "Train" for the sources)."""
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, nargs="+",
                   help="pair Parquet shards: globs, a corpus folder or its manifest.json")
    p.add_argument("--output", required=True, type=Path, help="run directory, e.g. runs/NAME")
    p.add_argument("--config", default="base",
                   help="model preset (tiny|small|base) or a config.json; ignored with --init")
    p.add_argument("--init", type=Path, help="start from this from_pretrained checkpoint directory")
    p.add_argument("--vocab", type=Path,
                   help="vocab.txt (default: the --init checkpoint's, else built from --data)")
    p.add_argument("--vocab_size", type=int, default=12000,
                   help="size of a vocabulary built from --data (RoFormer-Sim char: 12000)")
    p.add_argument("--stage", type=int, choices=(1, 2), default=1)
    p.add_argument("--teacher", type=Path, help="stage 2: frozen teacher checkpoint directory")
    p.add_argument("--sim_loss", choices=tuple(SIM_LOSSES), default="contrastive",
                   help="stage 1 in-batch loss: the reference's softmax (scale 20) or AM-Softmax")
    p.add_argument("--distill_weight", type=float, default=100.0, help="stage 2 λ")
    p.add_argument("--steps", type=int, default=10000, help="optimizer steps in total")
    p.add_argument("--batch_size", type=int, default=96,
                   help="rows per optimizer step (pairs × 2: a→b and b→a); even")
    p.add_argument("--maxlen", type=int, default=64, help="max tokens per sentence")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--adam_eps", type=float, default=1e-6)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--warmup_steps", type=int, default=0)
    p.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant",
                   help="learning rate after warmup")
    p.add_argument("--max_grad_norm", type=float, default=0.0, help="clip; 0 = off")
    p.add_argument("--grad_accum", type=int, default=1,
                   help="micro-batches per step (GradCache: negatives span the full batch)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--device", help="cpu|cuda|cuda:N (default: cuda when available)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--noise_prob", type=float, default=0.5,
                   help="probability a row's segment a gets BART-style whole-word masking")
    p.add_argument("--shuffle_buffer", type=int, default=8192, help="pairs shuffled together")
    p.add_argument("--num_workers", type=int, default=1,
                   help="DataLoader workers preparing batches (0: in the training process)")
    p.add_argument("--save_every", type=int, default=1000, help="checkpoint interval in steps")
    p.add_argument("--keep", type=int, default=3, help="intermediate checkpoints kept; 0 = all")
    p.add_argument("--resume", action="store_true",
                   help="continue OUTPUT from its newest complete checkpoint")
    p.add_argument("--no_progress", action="store_true", help="no tqdm bar")
    return p


def check_args(args: argparse.Namespace) -> None:
    """Reject inconsistent options before any work starts."""
    if args.batch_size < 2 or args.batch_size % 2:
        raise SystemExit(f"--batch_size must be even and ≥ 2 (a→b, b→a rows): {args.batch_size}")
    if args.grad_accum < 1 or args.batch_size % args.grad_accum:
        raise SystemExit(f"--batch_size {args.batch_size} must split into --grad_accum "
                         f"{args.grad_accum} equal micro-batches")
    if args.stage == 2 and args.teacher is None:
        raise SystemExit("--stage 2 needs --teacher DIR (the frozen teacher checkpoint)")
    if args.stage == 1 and args.teacher is not None:
        raise SystemExit("--teacher is only used with --stage 2")
    for name in ("init", "teacher"):
        path = getattr(args, name)
        if path is not None and not (path / "config.json").is_file():
            raise SystemExit(f"--{name} {path}: not a checkpoint directory (no config.json)")
    if args.vocab is not None and not args.vocab.is_file():
        raise SystemExit(f"--vocab {args.vocab}: file not found")
    if args.steps < 1 or args.save_every < 1:
        raise SystemExit("--steps and --save_every must be ≥ 1")
    out = args.output
    if not args.resume and (out / METRICS_FILE).exists():
        raise SystemExit(f"--output {out} already holds a run: pass --resume or a new --output")


def resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available")
    return device


def resolve_precision(precision: str | None, device: torch.device) -> str:
    if precision is None:
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise SystemExit("--precision fp16 needs --device cuda (use bf16 or fp32 on CPU)")
    return precision


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """Autocast context for the forward pass; losses are computed in float32 by the caller."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak lr at 0-based ``step``: linear warmup over ``warmup`` steps, then
    constant (the reference), linear decay to 0 at ``total``, or cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: torch.nn.Module, args: argparse.Namespace, device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (decoupled decay on every weight, as bert4keras' ``extend_with_weight_decay`` with
    an empty exclusion list; β = 0.9/0.999, ε = 1e-6 as bert4keras' Adam), as the fused
    kernel (CPU and CUDA): one pass over all parameters instead of a loop of small ops."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=args.lr, betas=(0.9, 0.999), eps=args.adam_eps,
        weight_decay=args.weight_decay, fused=device.type in ("cpu", "cuda"),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, args.warmup_steps, args.steps, args.schedule)
    )
    return optimizer, scheduler


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-step records of ``run_dir/metrics.jsonl`` (a torn last line is dropped)."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Keep only records up to ``step`` (those after the resumed checkpoint are replayed)."""
    kept = [r for r in read_metrics(run_dir) if r["step"] <= step]

    path = run_dir / METRICS_FILE
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    tmp.replace(path)


def check_shards(data: list[str]) -> list[Path]:
    """Resolve ``--data`` and check every shard's schema, and that some shard has rows, before
    training starts. Empty shards beside non-empty ones are fine (Beam writes them)."""
    try:
        paths = resolve_shards(data)
        if sum(open_shard(path).metadata.num_rows for path in paths) == 0:
            raise ValueError(f"no rows in any of the {len(paths)} shard(s): {paths[0]} ...")
    except (OSError, ValueError) as err:
        raise SystemExit(f"--data: {err}") from err
    return paths


def choose_vocab(args: argparse.Namespace, run_dir: Path, shards: list[Path]) -> Path:
    """The run's ``vocab.txt``: kept from an earlier start of this run, else ``--vocab``, else
    the ``--init`` checkpoint's, else a char vocabulary built from the shards (``model.vocab``).
    It is copied to ``run_dir/vocab.txt`` and saved with every checkpoint."""
    target = run_dir / VOCAB_FILE
    if target.is_file() and args.resume:
        return target
    if args.vocab is not None:
        source = args.vocab
    elif args.init is not None and (args.init / VOCAB_FILE).is_file():
        source = args.init / VOCAB_FILE
    else:
        if args.init is not None:
            raise SystemExit(f"--init {args.init} has no {VOCAB_FILE}: pass --vocab FILE")
        shard_names = [str(p) for p in shards]
        write_vocab(build_vocab(shard_names, args.vocab_size, progress=not args.no_progress),
                    target)
        return target
    target.write_bytes(source.read_bytes())
    return target


def build_model(args: argparse.Namespace, vocab_size: int, resume_from: Path | None) -> RoFormerSim:
    """From the resumed checkpoint, from ``--init`` (dropout set to ``--dropout``) or a fresh
    ``--config`` (preset name or config.json) sized to the vocabulary."""
    dropout = {"dropout": args.dropout, "attention_dropout": args.dropout}
    if resume_from is not None:
        model = RoFormerSim.from_pretrained(resume_from)
    elif args.init is not None:
        model = RoFormerSim.from_pretrained(args.init, **dropout)
    elif args.config in PRESETS:
        model = RoFormerSim(RoFormerSimConfig.preset(args.config, vocab_size=vocab_size, **dropout))
    elif Path(args.config).is_file():
        config = RoFormerSimConfig.from_json(args.config)
        model = RoFormerSim(RoFormerSimConfig(**{**config.to_dict(), "vocab_size": vocab_size,
                                                **dropout}))
    else:
        raise SystemExit(f"--config {args.config}: not one of {PRESETS} nor a config.json file")
    if model.config.vocab_size < vocab_size:
        raise SystemExit(f"the vocabulary has {vocab_size} tokens but the model only "
                         f"{model.config.vocab_size} embeddings: pass the model's own --vocab")
    return model


def load_teacher(path: Path, device: torch.device) -> tuple[RoFormerSim, Tokenizer]:
    """The frozen stage-2 teacher: eval mode (no dropout), no gradients, its own vocabulary."""
    if not (path / VOCAB_FILE).is_file():
        raise SystemExit(f"--teacher {path} has no {VOCAB_FILE}")
    teacher = RoFormerSim.from_pretrained(path).to(device).eval().requires_grad_(False)
    return teacher, Tokenizer(path / VOCAB_FILE)


class TeacherCollator:
    """Student batch plus the teacher's input: the clean text a of every row, alone
    (``[CLS] a [SEP]``, at most ``maxlen`` tokens, teacher vocabulary), as ``stage2.py`` encodes
    it with ``sim_tokenizer.encode(text, maxlen=maxlen)``; keys prefixed ``teacher_``."""

    def __init__(self, student: PairCollator, tokenizer: Tokenizer, maxlen: int) -> None:
        self.student, self.tokenizer, self.maxlen = student, tokenizer, maxlen

    def __call__(self, rows, rng) -> dict[str, torch.Tensor]:
        batch = self.student(rows, rng)
        encoded = self.tokenizer.encode_batch([a for a, _ in rows], maxlen=self.maxlen)
        batch.update({f"teacher_{k}": torch.from_numpy(v) for k, v in encoded.items()})
        return batch


class Trainer:
    """One optimizer step per batch: stage loss, GradCache micro-batching, AMP, clipping."""

    def __init__(self, model: RoFormerSim, args: argparse.Namespace, device: torch.device,
                 precision: str, teacher: RoFormerSim | None = None) -> None:
        self.model, self.teacher, self.args = model, teacher, args
        self.device, self.precision = device, precision
        self.encoder = torch.compile(model) if args.compile else model
        self.optimizer, self.scheduler = build_optimizer(model, args, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.step = 0

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])

    def teacher_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad(), autocast(self.precision, self.device):
            out = self.teacher(batch["teacher_input_ids"], batch["teacher_token_type_ids"],
                               batch["teacher_attention_mask"], return_logits=False)
        return out.pooled.float()

    def backward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Accumulate the (scaled) gradient of the stage loss on ``batch`` into ``.grad``;
        returns the detached ``(loss_gen, loss_sim)`` of the whole batch."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        _, targets = seq2seq_targets(batch["input_ids"], batch["token_type_ids"],
                                     batch["attention_mask"])
        n_targets = max(1, targets.numel())
        if self.teacher is None:
            batch_loss = SIM_LOSSES[self.args.sim_loss]
        else:
            teacher = self.teacher_vectors(batch)

            def batch_loss(pooled):
                return distill_loss(pooled, teacher, self.args.distill_weight)

        def forward(chunk):
            """(pooled, Σ token cross-entropy / batch targets): the LM head runs only on the
            positions that predict a segment-b token (``seq2seq_targets``)."""
            ids, segments, mask = chunk
            with autocast(self.precision, self.device):
                out = self.encoder(ids, segments, mask, unilm=True, return_logits=False)
                predict, chunk_targets = seq2seq_targets(ids, segments, mask)
                logits = self.model.lm_head(out.last_hidden_state[predict])  # (N, V)
            gen = F.cross_entropy(logits.float(), chunk_targets, reduction="sum") / n_targets
            return out.pooled, gen

        keys = ("input_ids", "token_type_ids", "attention_mask")
        chunks = list(zip(*(batch[k].chunk(self.args.grad_accum) for k in keys)))
        return cached_backward(
            forward, chunks, batch_loss, lambda loss: self.scaler.scale(loss).backward(),
            self.device,
        )

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Update the model on one batch; returns the loss parts, lr and gradient norm."""
        self.model.train()
        loss_gen, loss_sim = self.backward(batch)
        self.scaler.unscale_(self.optimizer)
        max_norm = self.args.max_grad_norm if self.args.max_grad_norm > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        loss_gen, loss_sim = loss_gen.item(), loss_sim.item()
        return {"loss": loss_gen + loss_sim, "loss_gen": loss_gen, "loss_sim": loss_sim,
                "lr": lr, "grad_norm": grad_norm.item()}


def make_loader(args: argparse.Namespace, shards: list[Path], tokenizer: Tokenizer,
                teacher_tokenizer: Tokenizer | None, device: torch.device) -> PairLoader:
    """The batch stream: noised [CLS] a [SEP] b [SEP] rows, cycling over the shards forever."""
    collate = PairCollator(tokenizer, args.maxlen, BartNoise(tokenizer, row_prob=args.noise_prob))
    if teacher_tokenizer is not None:
        collate = TeacherCollator(collate, teacher_tokenizer, args.maxlen)
    stream = PairStream([str(p) for p in shards], args.batch_size, collate,
                        shuffle_buffer=args.shuffle_buffer, seed=args.seed)
    return PairLoader(stream, num_workers=args.num_workers, pin_memory=device.type == "cuda")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def main(argv: list[str] | None = None) -> Path:
    """Train; returns the ``final/`` checkpoint directory."""
    args = build_parser().parse_args(argv)
    check_args(args)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    shards = check_shards(args.data)
    run_dir = args.output
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(run_dir)
    resume_from = latest_checkpoint(run_dir) if args.resume else None

    seed_everything(args.seed)
    vocab = choose_vocab(args, run_dir, shards)
    tokenizer = Tokenizer(vocab)
    model = build_model(args, tokenizer.vocab_size, resume_from).to(device)
    teacher, teacher_tokenizer = (None, None) if args.teacher is None else load_teacher(
        args.teacher, device)
    trainer = Trainer(model, args, device, precision, teacher)
    loader = make_loader(args, shards, tokenizer, teacher_tokenizer, device)
    if resume_from is not None:
        state = load_trainer_state(resume_from)
        trainer.load_state_dict(state["trainer"])
        try:
            loader.load_state_dict(state["data"])
        except ValueError as err:
            raise SystemExit(f"--resume from {resume_from}: {err}") from err
        set_rng_state(state["rng"])
        truncate_metrics(run_dir, trainer.step)
    elif args.resume:
        truncate_metrics(run_dir, 0)
    (run_dir / "args.json").write_text(
        json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   indent=2) + "\n", encoding="utf-8")
    print(f"training {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on "
          f"{device} ({precision}), stage {args.stage}, {len(shards)} shard(s), "
          f"from step {trainer.step} to {args.steps}", file=sys.stderr)

    def save_model(directory: Path) -> None:
        model.save_pretrained(directory, vocab_file=vocab)

    batches: Iterator[dict[str, torch.Tensor]] = iter(loader)
    progress = tqdm(total=args.steps, initial=trainer.step, disable=args.no_progress,
                    desc=f"stage {args.stage}", dynamic_ncols=True)
    with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as metrics:
        while trainer.step < args.steps:
            started = time.perf_counter()
            with torch.random.fork_rng(devices=[]):  # loader start-up draws stay out of dropout's
                batch = next(batches)
            tokens = int(batch["attention_mask"].sum())
            record = {"step": trainer.step + 1, **trainer.train_step(batch)}
            elapsed = time.perf_counter() - started
            record.update(tokens=tokens, tokens_per_s=tokens / elapsed)
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
            progress.update(1)
            progress.set_postfix(loss=f"{record['loss']:.3f}", gen=f"{record['loss_gen']:.3f}",
                                 sim=f"{record['loss_sim']:.3f}",
                                 tok_s=f"{record['tokens_per_s']:.0f}")
            if trainer.step % args.save_every == 0 or trainer.step == args.steps:
                state = {"trainer": trainer.state_dict(), "data": loader.state_dict(),
                         "rng": rng_state()}
                save_checkpoint(run_dir, trainer.step, save_model, state, args.keep)
    progress.close()
    final = write_atomically(run_dir / "final", save_model)
    print(f"final model: {final}", file=sys.stderr)
    return final


if __name__ == "__main__":
    main()
