"""Train RoFormer-Sim on pair shards: stage 1 (generation + contrastive), stage 2 (distillation).

    python -m model.train --data 'out/corpus/train-*.parquet' --output runs/sim --config small
    python -m model.train --data out/corpus --output runs/sim2 --stage 2 \\
        --init runs/sim/final --teacher teacher_dir
    torchrun --nproc_per_node 4 -m model.train --data out/corpus --output runs/sim ...

Losses (RoFormer-Sim, kexue.fm/archives/8454; reference ZhuiyiTechnology/roformer-sim
``train/stage1.py`` and ``train/stage2.py``), on a batch of rows [CLS] a [SEP] b [SEP] under the
UniLM mask, where rows 2k and 2k+1 are the same pair in both directions and segment a carries
BART-style noise:

* stage 1: ``L = L_gen + L_sim``, L_gen the seq2seq cross-entropy on segment b, L_sim the
  in-batch contrastive loss on the pooled [CLS] vectors (positive of row 2k is row 2k+1);
* stage 2: ``L = L_gen + L_sim``, L_sim = λ/B² Σᵢⱼ (cos(uᵢ,uⱼ) − cos(vᵢ,vⱼ))², λ = 100,
  u from a frozen teacher (eval mode, no grad) reading the clean text a of each row alone.

Under torchrun (``model.distributed``) the model is wrapped in ``DistributedDataParallel``, each
of W ranks reads its own pieces of the data (``PairStream``'s rank split) and takes
``batch_size / W`` rows, and the pooled vectors (and the teacher's) are gathered from all ranks
with gradient, so L_sim spans the global batch B exactly as on one device; L_gen is normalised
by the global number of target tokens. With ``--grad_accum K`` each rank's rows are split into K
micro-batches and L_sim still spans the whole global batch (GradCache, ``model.gradcache``).

Run layout (written by rank 0): ``OUTPUT/checkpoint-STEP/`` (the newest ``--keep`` kept),
``OUTPUT/final/``, ``OUTPUT/best/`` (``--save_best``), ``OUTPUT/metrics.jsonl``
(``model.metrics``), ``OUTPUT/metrics.png`` (``model.plot``), ``OUTPUT/args.json`` (the
``TrainConfig``) and ``OUTPUT/vocab.txt``. ``--resume`` continues from the newest intact
checkpoint with the same options and world size and reproduces the uninterrupted run exactly
(same model, optimizer, scheduler, scaler, and every rank's RNG and data position).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from model import cli
from model.checkpoint import (
    checkpoint_steps,
    clean_temporaries,
    load_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_atomically,
)
from model.data import (
    MANIFEST_FILE,
    PairCollator,
    PairLoader,
    PairStream,
    check_texts,
    resolve_shards,
)
from model.distributed import World, close_world, init_world
from model.gradcache import cached_backward
from model.losses import am_softmax_loss, contrastive_loss, distill_loss, seq2seq_targets
from model.metrics import MetricsLog, read_metrics, truncate_metrics
from model.noise import BartNoise
from model.roformer import VOCAB_FILE, RoFormerSim, RoFormerSimConfig
from model.tokenizer import Tokenizer
from model.train_config import PRESETS, TrainConfig, build_parser, parse_config
from model.validate import Validator, read_dev_tasks
from model.vocab import build_vocab, write_vocab

SIM_LOSSES = {"contrastive": contrastive_loss, "am_softmax": am_softmax_loss}
ARGS_FILE = "args.json"
USER_ERRORS = (ValueError, OSError)
"""What ``main`` reports as one line and exit status 1 (``FileNotFoundError`` is an OSError)."""
T = TypeVar("T")

__all__ = ["TrainConfig", "Trainer", "build_parser", "main", "read_metrics", "run"]


def resolve_device(name: str | None) -> torch.device:
    """``--device``: CUDA when available if none is named, else the named one checked
    (:func:`model.cli.check_device`)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return cli.check_device(name)


def resolve_precision(precision: str | None, device: torch.device) -> str:
    if precision is None:
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs --device cuda (use bf16 or fp32 on CPU)")
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
    model: torch.nn.Module, config: TrainConfig, device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (decoupled decay on every weight, as bert4keras' ``extend_with_weight_decay`` with
    an empty exclusion list; β = 0.9/0.999, ε = 1e-6 as bert4keras' Adam), as the fused
    kernel (CPU and CUDA): one pass over all parameters instead of a loop of small ops."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, betas=(0.9, 0.999), eps=config.adam_eps,
        weight_decay=config.weight_decay, fused=device.type in ("cpu", "cuda"),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.warmup_steps, config.steps, config.schedule)
    )
    return optimizer, scheduler


def check_shards(data: list[str], split: str | None = "train", option: str = "--data"
                 ) -> list[Path]:
    """Resolve ``data`` and check every shard before training starts: the schema, no null
    text (the file and row are named), and some row with both texts non-blank. Empty shards
    beside non-empty ones are fine (Beam writes them)."""
    try:
        paths = resolve_shards(data, split)
        counts = [check_texts(path) for path in paths]
        if sum(rows for rows, _ in counts) == 0:
            raise ValueError(f"no rows in any of the {len(paths)} shard(s): {paths[0]} ...")
        if sum(usable for _, usable in counts) == 0:
            raise ValueError(f"every row of the {len(paths)} shard(s) has a blank text_a or "
                             f"text_b: {paths[0]} ...")
    except (OSError, ValueError) as err:
        raise ValueError(f"{option}: {err}") from err
    return paths


def valid_shards(data: list[str]) -> list[Path]:
    """The ``valid`` split of the corpus ``data`` names (a corpus folder or its manifest)."""
    manifests = [Path(s) / MANIFEST_FILE if Path(s).is_dir() else Path(s) for s in data]
    if not all(m.suffix == ".json" and m.is_file() for m in manifests):
        raise ValueError(f"--eval_every: the valid split is read from a corpus _manifest.json; "
                         f"--data {' '.join(data)} names none (pass the corpus folder)")
    return check_shards([str(m) for m in manifests], "valid", "--eval_every (valid split)")


def choose_vocab(config: TrainConfig, run_dir: Path, shards: list[Path]) -> Path:
    """The run's ``vocab.txt``: kept from an earlier start of this run, else ``--vocab``, else
    the ``--init`` checkpoint's, else a char vocabulary built from the shards (``model.vocab``).
    It is copied to ``run_dir/vocab.txt`` and saved with every checkpoint."""
    target = run_dir / VOCAB_FILE
    if target.is_file() and config.resume:
        return target
    if config.vocab is not None:
        source = config.vocab
    elif config.init is not None and (config.init / VOCAB_FILE).is_file():
        source = config.init / VOCAB_FILE
    else:
        if config.init is not None:
            raise FileNotFoundError(f"--init {config.init} has no {VOCAB_FILE}: pass --vocab FILE")
        shard_names = [str(p) for p in shards]
        write_vocab(build_vocab(shard_names, config.vocab_size,
                                progress=not config.no_progress), target)
        return target
    target.write_bytes(source.read_bytes())
    return target


def build_model(config: TrainConfig, vocab_size: int, resume_from: Path | None) -> RoFormerSim:
    """From the resumed checkpoint, from ``--init`` (dropout set to ``--dropout``) or a fresh
    ``--config`` (preset name or config.json) sized to the vocabulary."""
    dropout = {"dropout": config.dropout, "attention_dropout": config.dropout}
    if resume_from is not None:
        model = RoFormerSim.from_pretrained(resume_from)
    elif config.init is not None:
        model = RoFormerSim.from_pretrained(config.init, **dropout)
    elif config.config in PRESETS:
        model = RoFormerSim(RoFormerSimConfig.preset(config.config, vocab_size=vocab_size,
                                                     **dropout))
    else:
        base = RoFormerSimConfig.from_json(config.config)
        model = RoFormerSim(RoFormerSimConfig(**{**base.to_dict(), "vocab_size": vocab_size,
                                                 **dropout}))
    if model.config.vocab_size < vocab_size:
        raise ValueError(f"the vocabulary has {vocab_size} tokens but the model only "
                         f"{model.config.vocab_size} embeddings: pass the model's own --vocab")
    return model


def load_teacher(path: Path, device: torch.device) -> tuple[RoFormerSim, Tokenizer]:
    """The frozen stage-2 teacher: eval mode (no dropout), no gradients, its own vocabulary."""
    if not (path / VOCAB_FILE).is_file():
        raise FileNotFoundError(f"--teacher {path} has no {VOCAB_FILE}")
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
    """One optimizer step per global batch: stage loss, GradCache micro-batching, AMP, clipping,
    and on W > 1 ranks DistributedDataParallel with the batch loss over the gathered rows."""

    def __init__(self, model: RoFormerSim, config: TrainConfig, device: torch.device,
                 precision: str, teacher: RoFormerSim | None = None,
                 world: World | None = None) -> None:
        self.model, self.teacher, self.config = model, teacher, config
        self.device, self.precision = device, precision
        self.world = world or World()
        self.ddp = None
        module: torch.nn.Module = model
        if self.world.size > 1:
            self.ddp = module = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.encoder = torch.compile(module) if config.compile else module
        self.optimizer, self.scheduler = build_optimizer(model, config, device)
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

    def batch_loss(self, batch: dict[str, torch.Tensor], gather: bool = True
                   ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``loss(pooled)`` of this rank's (b, H) pooled vectors: the stage's in-batch loss over
        the rows of all ranks (``gather``) or of this rank only."""
        rows = self.world.gather_rows if gather else (lambda x: x)
        if self.teacher is None:
            sim_loss = SIM_LOSSES[self.config.sim_loss]
            return lambda pooled: sim_loss(rows(pooled))
        teacher = rows(self.teacher_vectors(batch))
        return lambda pooled: distill_loss(rows(pooled), teacher, self.config.distill_weight)

    def forward(self, module: torch.nn.Module, chunk: tuple[torch.Tensor, ...], scale: Any
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled (b, H), Σ token cross-entropy × ``scale``): the LM head runs only on the
        positions that predict a segment-b token (``seq2seq_targets``)."""
        ids, segments, mask = chunk
        with autocast(self.precision, self.device):
            out = module(ids, segments, mask, unilm=True, return_logits=False)
            predict, targets = seq2seq_targets(ids, segments, mask)
            logits = self.model.lm_head(out.last_hidden_state[predict])  # (N, V)
        return out.pooled, F.cross_entropy(logits.float(), targets, reduction="sum") * scale

    def backward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Accumulate the (scaled) gradient of the stage loss on this rank's share of the global
        batch into ``.grad``; returns the detached ``(loss_gen, loss_sim)`` of the global batch.

        Rank r's generation term is W · Σ_r CE / N (N target tokens over all ranks), so the mean
        over ranks that DistributedDataParallel takes is Σ CE / N; the gathered batch loss gets
        its W × from the all-gather's backward (``World.gather_rows``).
        """
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        _, targets = seq2seq_targets(batch["input_ids"], batch["token_type_ids"],
                                     batch["attention_mask"])
        n_targets = self.world.sum(torch.tensor(float(targets.numel()), device=self.device))
        scale = self.world.size / n_targets.clamp(min=1)
        keys = ("input_ids", "token_type_ids", "attention_mask")
        chunks = list(zip(*(batch[k].chunk(self.config.grad_accum) for k in keys)))
        gen, sim = cached_backward(
            lambda chunk: self.forward(self.encoder, chunk, scale), chunks,
            self.batch_loss(batch), lambda loss: self.scaler.scale(loss).backward(), self.device,
            self.ddp.no_sync if self.ddp is not None else nullcontext,
        )
        return self.world.sum(gen) / self.world.size, sim

    @torch.no_grad()
    def eval_sums(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(Σ token cross-entropy, target tokens, rows × batch loss, rows) of one batch of this
        rank alone, in eval mode (no dropout); float64 so sums over many batches stay exact."""
        self.model.eval()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        chunk = (batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        pooled, ce = self.forward(self.model, chunk, 1.0)
        sim = self.batch_loss(batch, gather=False)(pooled.float())
        n_targets = seq2seq_targets(*chunk)[1].numel()
        rows = pooled.shape[0]
        return torch.tensor([ce.item(), n_targets, sim.item() * rows, rows], dtype=torch.float64)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Update the model on one batch; returns the loss parts, lr and gradient norm."""
        self.model.train()
        loss_gen, loss_sim = self.backward(batch)
        self.scaler.unscale_(self.optimizer)
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm > 0 else math.inf
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


def make_collator(config: TrainConfig, tokenizer: Tokenizer,
                  teacher_tokenizer: Tokenizer | None, noise: bool = True
                  ) -> PairCollator | TeacherCollator:
    """Noised (training) or clean (validation) [CLS] a [SEP] b [SEP] rows, plus the teacher's
    input in stage 2."""
    collate = PairCollator(tokenizer, config.maxlen,
                           BartNoise(tokenizer, row_prob=config.noise_prob) if noise else None)
    if teacher_tokenizer is not None:
        return TeacherCollator(collate, teacher_tokenizer, config.maxlen)
    return collate


def make_loader(config: TrainConfig, shards: list[Path], collate: Callable, world: World,
                device: torch.device) -> PairLoader:
    """This rank's batch stream: ``batch_size / W`` rows from its own pieces, forever."""
    stream = PairStream([str(p) for p in shards], config.check_world(world.size), collate,
                        shuffle_buffer=config.shuffle_buffer, seed=config.seed,
                        rank=world.rank, world_size=world.size)
    return PairLoader(stream, num_workers=config.num_workers, pin_memory=device.type == "cuda")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resume_point(run_dir: Path) -> tuple[int, Path, dict[str, Any]] | None:
    """(step, path, trainer state) of the newest checkpoint whose weights and trainer state
    load; each newer, unreadable one is reported on stderr and skipped."""
    for step, path in reversed(checkpoint_steps(run_dir)):
        try:
            RoFormerSim.from_pretrained(path)
            state = load_trainer_state(path)
        except USER_ERRORS as err:
            print(f"warning: skipping unreadable {path}: {err}", file=sys.stderr)
            continue
        return step, path, state
    return None


def check_world_size(state: dict[str, Any], checkpoint: Path, world_size: int) -> None:
    if state["world_size"] != world_size:
        raise ValueError(f"--resume from {checkpoint}: written by {state['world_size']} rank(s), "
                         f"this job has {world_size}; resume with the same number of ranks "
                         "(torchrun --nnodes × --nproc_per_node) to continue exactly")


def prepare_run(config: TrainConfig, shards: list[Path], world_size: int
                ) -> tuple[Path | None, Path]:
    """On rank 0, before any rank trains: create the run directory, check that ``--resume``
    keeps the options of the run it continues, pick the checkpoint to resume from, and write
    the vocabulary and ``args.json``. Returns (checkpoint or None, vocab.txt)."""
    run_dir = config.output
    started = bool(read_metrics(run_dir, None) or checkpoint_steps(run_dir))
    if started and not config.resume:
        raise ValueError(f"--output {run_dir} already holds a run: pass --resume or a new "
                         "--output")
    if config.resume and (run_dir / ARGS_FILE).is_file():
        changed = config.changed_on_resume(TrainConfig.read_json(run_dir / ARGS_FILE))
        if changed:
            raise ValueError(f"--resume {run_dir} with changed options: {'; '.join(changed)} "
                             "(start a new --output to change them)")
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(run_dir)
    checkpoints = checkpoint_steps(run_dir) if config.resume else []
    point = resume_point(run_dir) if checkpoints else None
    if checkpoints and point is None:
        raise ValueError(f"--resume {run_dir}: none of its {len(checkpoints)} checkpoint(s) "
                         "is readable")
    step, resume_from = (0, None) if point is None else point[:2]
    if point is not None:
        check_world_size(point[2], resume_from, world_size)
        if checkpoints[-1][1] != resume_from:
            print(f"resuming from {resume_from}, the newest intact checkpoint", file=sys.stderr)
    truncate_metrics(run_dir, step)
    vocab = choose_vocab(config, run_dir, shards)
    config.write_json(run_dir / ARGS_FILE)
    return resume_from, vocab


def on_main(world: World, work: Callable[[], T]) -> T:
    """Run ``work`` on rank 0 and return its result, or raise its user error, on every rank."""
    outcome: tuple[bool, Any] | None = None
    if world.main:
        try:
            outcome = (True, work())
        except USER_ERRORS as err:
            outcome = (False, err)
    ok, value = world.broadcast(outcome)
    if not ok:
        raise value
    return value


def restore(trainer: Trainer, loader: PairLoader, checkpoint: Path, world: World
            ) -> dict[str, Any]:
    """Load the trainer state and this rank's data position and RNG from ``checkpoint``;
    returns the saved ``extra`` state (the best eval value)."""
    state = load_trainer_state(checkpoint)
    check_world_size(state, checkpoint, world.size)
    trainer.load_state_dict(state["trainer"])
    mine = state["ranks"][world.rank]
    try:
        loader.load_state_dict(mine["data"])
    except ValueError as err:
        raise ValueError(f"--resume from {checkpoint}: {err}") from err
    set_rng_state(mine["rng"])
    return state["extra"]


def run(config: TrainConfig) -> Path:
    """Train (every rank); returns the ``final/`` checkpoint directory. Raises ``ValueError`` /
    ``OSError`` (``FileNotFoundError``) on bad options, data or files."""
    config.check()
    world, device = init_world(resolve_device(config.device), config.dist_timeout)
    try:
        return _train(config, world, device)
    finally:
        close_world(world)


def _train(config: TrainConfig, world: World, device: torch.device) -> Path:
    precision = resolve_precision(config.precision, device)
    config.check_world(world.size)
    shards = check_shards(config.data)
    valid, tasks = ((valid_shards(config.data), read_dev_tasks(config)) if config.eval_every
                    else ([], []))
    run_dir = config.output
    resume_from, vocab = on_main(world, lambda: prepare_run(config, shards, world.size))
    seed_everything(config.seed + world.rank)
    tokenizer = Tokenizer(vocab)
    model = build_model(config, tokenizer.vocab_size, resume_from).to(device)
    teacher, teacher_tokenizer = (None, None) if config.teacher is None else load_teacher(
        config.teacher, device)
    trainer = Trainer(model, config, device, precision, teacher, world)
    loader = make_loader(config, shards, make_collator(config, tokenizer, teacher_tokenizer),
                         world, device)
    validator = None if config.eval_every == 0 else Validator(
        config, trainer, valid, make_collator(config, tokenizer, teacher_tokenizer, noise=False),
        tokenizer, tasks)
    extra = {} if resume_from is None else restore(trainer, loader, resume_from, world)
    if world.main:
        print(f"training {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on "
              f"{world.size} × {device} ({precision}), stage {config.stage}, {len(shards)} "
              f"shard(s), from step {trainer.step} to {config.steps}", file=sys.stderr)

    def save_model(directory: Path) -> None:
        model.save_pretrained(directory, vocab_file=vocab)

    log = MetricsLog(run_dir)
    batches: Iterator[dict[str, torch.Tensor]] = iter(loader)
    progress = tqdm(total=config.steps, initial=trainer.step,
                    disable=config.no_progress or not world.main,
                    desc=f"stage {config.stage}", dynamic_ncols=True)
    try:
        while trainer.step < config.steps:
            started = time.perf_counter()
            with torch.random.fork_rng(devices=[]):  # loader start-up draws stay out of dropout's
                batch = next(batches)
            tokens = int(world.sum(batch["attention_mask"].sum()))
            record = {"step": trainer.step + 1, **trainer.train_step(batch)}
            elapsed = time.perf_counter() - started
            record.update(tokens=tokens, tokens_per_s=tokens / elapsed)
            if world.main:
                log.write(record)
                progress.update(1)
                progress.set_postfix(loss=f"{record['loss']:.3f}",
                                     gen=f"{record['loss_gen']:.3f}",
                                     sim=f"{record['loss_sim']:.3f}",
                                     tok_s=f"{record['tokens_per_s']:.0f}")
            last = trainer.step == config.steps
            if validator is not None and (trainer.step % config.eval_every == 0 or last):
                extra = validator.evaluate(trainer.step, extra, log, save_model)
            if trainer.step % config.save_every == 0 or last:
                ranks = world.gather_objects({"data": loader.state_dict(), "rng": rng_state()})
                if world.main:
                    state = {"trainer": trainer.state_dict(), "world_size": world.size,
                             "ranks": ranks, "extra": extra}
                    save_checkpoint(run_dir, trainer.step, save_model, state, config.keep)
                world.barrier()
    finally:
        progress.close()
        log.close()
    final = on_main(world, lambda: write_atomically(run_dir / "final", save_model))
    if world.main:
        print(f"final model: {final}", file=sys.stderr)
        plot_run_if_possible(run_dir)
    return final


def plot_run_if_possible(run_dir: Path) -> None:
    """``run_dir/metrics.png`` (``model.plot``) when matplotlib is installed."""
    try:
        from model.plot import plot_run
    except ImportError as err:
        print(f"no plot ({err}; pip install matplotlib)", file=sys.stderr)
        return
    print(f"plot: {plot_run(run_dir)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> Path:
    """``python -m model.train``: train; returns the ``final/`` checkpoint directory. A user
    error (bad option, data or file) exits with status 1 and one line naming it."""
    config = parse_config(argv)
    try:
        return run(config)
    except USER_ERRORS as err:
        raise SystemExit(f"model.train: error: {err}") from err


if __name__ == "__main__":
    main()
