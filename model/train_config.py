"""The trainer's options as one typed dataclass: the CLI is generated from it and ``args.json``
round-trips it.

Defaults follow the reference recipe (ZhuiyiTechnology/roformer-sim ``train/stage1.py``,
``stage2.py``, bert4keras; README "Train" lists the sources). ``--batch_size`` is the global
batch: rows per optimizer step over all ranks; each of W ranks takes ``batch_size / W`` rows and
``--grad_accum K`` splits a rank's share into K micro-batches of ``batch_size / (W·K)`` rows.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from model.roformer import RoFormerSimConfig
from model.tokenizer import load_vocab

PRESETS = ("tiny", "small", "base")
SIM_LOSSES = ("contrastive", "am_softmax")

RESUME_MAY_CHANGE = frozenset({
    "steps", "save_every", "keep", "resume", "no_progress", "device", "compile", "eval_every",
    "dist_timeout",
})
"""Options a ``--resume`` may change; any other change is refused (it would break exactness)."""


def _opt(help: str, **argparse_kwargs: Any) -> dict[str, Any]:
    return {"help": help, **argparse_kwargs}


@dataclass
class TrainConfig:
    """Every option of ``python -m model.train`` (one field per ``--flag``)."""

    data: list[str] = field(metadata=_opt(
        "pair Parquet shards: globs, a corpus folder or its _manifest.json"))
    output: Path = field(metadata=_opt("run directory, e.g. runs/NAME"))
    config: str = field(default="base", metadata=_opt(
        "model preset (tiny|small|base) or a config.json; ignored with --init"))
    init: Path | None = field(default=None, metadata=_opt(
        "start from this from_pretrained checkpoint directory"))
    vocab: Path | None = field(default=None, metadata=_opt(
        "vocab.txt (default: the --init checkpoint's, else built from --data)"))
    vocab_size: int = field(default=12000, metadata=_opt(
        "size of a vocabulary built from --data (RoFormer-Sim char: 12000)"))
    stage: int = field(default=1, metadata=_opt("1: generation + contrastive; 2: distillation",
                                                choices=(1, 2)))
    teacher: Path | None = field(default=None, metadata=_opt(
        "stage 2: frozen teacher checkpoint directory"))
    sim_loss: str = field(default="contrastive", metadata=_opt(
        "stage 1 in-batch loss: the reference's softmax (scale 20) or AM-Softmax",
        choices=SIM_LOSSES))
    distill_weight: float = field(default=100.0, metadata=_opt("stage 2 λ"))
    steps: int = field(default=10000, metadata=_opt("optimizer steps in total"))
    batch_size: int = field(default=96, metadata=_opt(
        "rows per optimizer step over all ranks (pairs × 2: a→b and b→a); even per rank"))
    maxlen: int = field(default=64, metadata=_opt("max tokens per sentence"))
    lr: float = field(default=1e-5, metadata=_opt("peak learning rate"))
    weight_decay: float = field(default=0.01, metadata=_opt("AdamW decoupled weight decay"))
    adam_eps: float = field(default=1e-6, metadata=_opt("AdamW ε"))
    dropout: float = field(default=0.2, metadata=_opt("hidden and attention dropout"))
    warmup_steps: int = field(default=0, metadata=_opt("linear warmup steps"))
    schedule: str = field(default="constant", metadata=_opt(
        "learning rate after warmup", choices=("constant", "linear", "cosine")))
    max_grad_norm: float = field(default=0.0, metadata=_opt("clip; 0 = off"))
    grad_accum: int = field(default=1, metadata=_opt(
        "micro-batches per rank and step (GradCache: negatives span the global batch)"))
    precision: str | None = field(default=None, metadata=_opt(
        "default: bf16 on CUDA, fp32 on CPU", choices=("fp32", "bf16", "fp16")))
    device: str | None = field(default=None, metadata=_opt(
        "cpu|cuda|cuda:N (default: cuda when available; under torchrun cuda:LOCAL_RANK)"))
    compile: bool = field(default=False, metadata=_opt("torch.compile the model"))
    seed: int = field(default=42, metadata=_opt("seed of data order, noise, init and dropout"))
    noise_prob: float = field(default=0.5, metadata=_opt(
        "probability a row's segment a gets BART-style whole-word masking"))
    shuffle_buffer: int = field(default=8192, metadata=_opt("pairs shuffled together"))
    num_workers: int = field(default=1, metadata=_opt(
        "DataLoader workers per rank preparing batches (0: in the training process)"))
    save_every: int = field(default=1000, metadata=_opt("checkpoint interval in steps"))
    keep: int = field(default=3, metadata=_opt("intermediate checkpoints kept; 0 = all"))
    resume: bool = field(default=False, metadata=_opt(
        "continue OUTPUT from its newest intact checkpoint"))
    eval_every: int = field(default=0, metadata=_opt(
        "evaluate every N steps and at the end (0 = never): loss on the corpus's valid split, "
        "and Spearman on --sts_dev"))
    sts_dev: Path | None = field(default=None, metadata=_opt(
        "STS dev folder or file (text1<TAB>text2<TAB>label), evaluated with --eval_every"))
    save_best: str | None = field(default=None, metadata=_opt(
        "keep OUTPUT/best/ at the best value of this eval metric (valid_loss, sts_TASK, ...: "
        "lowest for *loss*, highest otherwise)"))
    dist_timeout: float = field(default=1800.0, metadata=_opt(
        "seconds a rank waits for the others in a collective before the job fails"))
    no_progress: bool = field(default=False, metadata=_opt("no tqdm bar"))

    def check(self) -> None:
        """Reject inconsistent options before any work starts (``ValueError`` /
        ``FileNotFoundError`` naming the option)."""
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError(f"--batch_size must be even and ≥ 2 (a→b, b→a rows): "
                             f"{self.batch_size}")
        if self.grad_accum < 1:
            raise ValueError(f"--grad_accum must be ≥ 1: {self.grad_accum}")
        if self.maxlen < 2:
            raise ValueError(f"--maxlen must be ≥ 2 ([CLS] and [SEP] included): {self.maxlen}")
        self.check_world(1)
        if self.stage == 2 and self.teacher is None:
            raise ValueError("--stage 2 needs --teacher DIR (the frozen teacher checkpoint)")
        if self.stage == 1 and self.teacher is not None:
            raise ValueError("--teacher is only used with --stage 2")
        for name in ("init", "teacher"):
            path = getattr(self, name)
            if path is not None and not (path / "config.json").is_file():
                raise FileNotFoundError(f"--{name} {path}: not a checkpoint directory "
                                        "(no config.json)")
        if self.init is None and self.config not in PRESETS:
            if not Path(self.config).is_file():
                raise FileNotFoundError(f"--config {self.config}: not one of {PRESETS} nor a "
                                        "config.json file")
            try:
                RoFormerSimConfig.from_json(self.config)
            except (ValueError, TypeError, AttributeError) as err:
                raise ValueError(f"--config {self.config}: not a model config ({err})") from err
        if self.vocab is not None:
            if not self.vocab.is_file():
                raise FileNotFoundError(f"--vocab {self.vocab}: file not found")
            try:
                load_vocab(self.vocab)
            except ValueError as err:
                raise ValueError(f"--vocab: {err}") from None
        if self.steps < 1 or self.save_every < 1:
            raise ValueError("--steps and --save_every must be ≥ 1")
        if self.eval_every < 0:
            raise ValueError(f"--eval_every must be ≥ 0: {self.eval_every}")
        if self.eval_every == 0 and (self.sts_dev is not None or self.save_best is not None):
            raise ValueError("--sts_dev and --save_best need --eval_every N")
        if self.sts_dev is not None and not self.sts_dev.exists():
            raise FileNotFoundError(f"--sts_dev {self.sts_dev} does not exist")
        if self.dist_timeout <= 0:
            raise ValueError(f"--dist_timeout must be > 0: {self.dist_timeout}")

    def check_world(self, world_size: int) -> int:
        """Rows per rank, ``batch_size / world_size``: a whole, even number that splits into
        ``grad_accum`` micro-batches."""
        per_rank, left = divmod(self.batch_size, world_size)
        if left or per_rank % 2:
            raise ValueError(f"--batch_size {self.batch_size} must split into {world_size} "
                             "rank(s) of an even number of rows (a→b, b→a)")
        if per_rank % self.grad_accum:
            raise ValueError(f"--batch_size {self.batch_size} over {world_size} rank(s) is "
                             f"{per_rank} rows per rank: not divisible by --grad_accum "
                             f"{self.grad_accum}")
        return per_rank

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(values) - set(hints))
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        return cls(**{k: Path(v) if v is not None and _base_type(hints[k]) is Path else v
                      for k, v in values.items()})

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read_json(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def changed_on_resume(self, earlier: TrainConfig) -> list[str]:
        """``--name old → new`` for every option that differs from ``earlier`` and that a
        resume may not change."""
        old, new = earlier.to_dict(), self.to_dict()
        return [f"--{k} {old[k]} → {new[k]}" for k in new
                if k not in RESUME_MAY_CHANGE and old.get(k) != new[k]]


def _base_type(hint: Any) -> Any:
    """``X`` of ``X | None``, else the hint itself."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def build_parser() -> argparse.ArgumentParser:
    """The CLI: one ``--flag`` per :class:`TrainConfig` field, required when it has no default."""
    p = argparse.ArgumentParser(
        prog="python -m model.train",
        description="Train RoFormer-Sim on pair shards: stage 1 (generation + contrastive), "
                    "stage 2 (distillation); under torchrun, on every rank.")
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        kind = _base_type(hints[f.name])
        kwargs = dict(f.metadata)
        if kind is bool:
            kwargs["action"] = "store_true"
        elif typing.get_origin(kind) is list:
            kwargs.update(nargs="+", type=typing.get_args(kind)[0])
        else:
            kwargs["type"] = kind
        if f.default is MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = f.default
            if f.default is not None and f.default is not False:
                kwargs["help"] += f" (default: {f.default})"
        p.add_argument(f"--{f.name}", **kwargs)
    return p


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """``TrainConfig`` from the command line (argparse exits 2 on unknown or malformed flags)."""
    return TrainConfig(**vars(build_parser().parse_args(argv)))
