"""Validation during training (``--eval_every``), sharded across ranks, and ``--save_best``.

Each evaluation writes one ``"kind": "eval"`` record to ``metrics.jsonl``:

* ``valid_loss = valid_loss_gen + valid_loss_sim`` on the corpus's ``valid`` split, read once in
  file order with no noise and no dropout: L_gen = Σ token cross-entropy / Σ target tokens over
  the whole split, L_sim = the stage's in-batch loss averaged over rows, in batches of
  ``--batch_size`` rows (as many negatives as a training step). Each rank reads its own pieces
  of the split (``PairStream``'s rank split) and the sums are added over ranks, so the value
  depends only on the data, the model and the world size (which rows share a batch);
* ``sts_TASK``: Spearman's ρ of each ``--sts_dev`` file's labels against the cosines of the
  pooled vectors (``model.evaluate.evaluate_task``, raw vectors); the files are dealt to the
  ranks round-robin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from model.checkpoint import write_atomically
from model.data import PairStream
from model.evaluate import evaluate_task
from model.metrics import EVAL, MetricsLog
from model.sts import StsTask, read_sts, sts_files
from model.tokenizer import Tokenizer
from model.train_config import TrainConfig

if TYPE_CHECKING:
    from model.train import Trainer

BEST_DIR = "best"
BEST_FILE = "best.json"


def eval_metrics(tasks: list[StsTask]) -> list[str]:
    """Names of the values of an eval record, in order."""
    return ["valid_loss", "valid_loss_gen", "valid_loss_sim", *(f"sts_{t.name}" for t in tasks)]


def read_dev_tasks(config: TrainConfig) -> list[StsTask]:
    """The ``--sts_dev`` tasks, checked (with ``--save_best``) before training starts."""
    tasks = [] if config.sts_dev is None else [read_sts(p) for p in sts_files([config.sts_dev])]
    names = [task.name for task in tasks]
    if len(set(names)) < len(names):
        raise ValueError(f"--sts_dev {config.sts_dev} names a task twice: {names}")
    metrics = eval_metrics(tasks)
    if config.save_best is not None and config.save_best not in metrics:
        raise ValueError(f"--save_best {config.save_best}: not one of {metrics}")
    return tasks


class Validator:
    """Evaluates ``trainer``'s model on the valid ``shards`` (rows made by ``collate``) and the
    STS ``tasks``; see the module docstring."""

    def __init__(self, config: TrainConfig, trainer: Trainer, shards: list[Path],
                 collate: Callable, tokenizer: Tokenizer, tasks: list[StsTask]) -> None:
        self.config, self.trainer, self.tokenizer, self.tasks = config, trainer, tokenizer, tasks
        world = trainer.world
        self.stream = PairStream([str(p) for p in shards], config.batch_size, collate,
                                 shuffle_buffer=1, seed=config.seed, epochs=1,
                                 rank=world.rank, world_size=world.size)
        self.metrics = eval_metrics(tasks)

    def valid_loss(self) -> dict[str, float]:
        sums = torch.zeros(4, dtype=torch.float64)
        for batch, _ in self.stream:
            sums += self.trainer.eval_sums(batch)
        ce, targets, sim_rows, rows = self.trainer.world.sum(
            sums.to(self.trainer.device)).tolist()
        gen, sim = ce / max(targets, 1.0), sim_rows / rows
        return {"valid_loss": gen + sim, "valid_loss_gen": gen, "valid_loss_sim": sim}

    def sts(self) -> dict[str, float]:
        world, model = self.trainer.world, self.trainer.model
        model.eval()
        mine = {f"sts_{task.name}": evaluate_task(
                    model, self.tokenizer, task, ("pooler",), ("none",),
                    self.config.maxlen)["pooler"]["raw"]["spearman"]
                for task in self.tasks[world.rank::world.size]}
        merged = {k: v for part in world.gather_objects(mine) for k, v in part.items()}
        return {name: merged[name] for name in self.metrics if name in merged}

    def evaluate(self, step: int, extra: dict[str, Any], log: MetricsLog,
                 save_model: Callable[[Path], None]) -> dict[str, Any]:
        """Evaluate after ``step``, log the record (rank 0) and, with ``--save_best``, keep
        ``OUTPUT/best/`` (model + ``best.json``) when the metric improved; returns ``extra``
        with the best value so far (saved in checkpoints for ``--resume``)."""
        device = self.trainer.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            record = {"kind": EVAL, "step": step, **self.valid_loss(), **self.sts()}
        world = self.trainer.world
        if world.main:
            log.write(record)
        metric = self.config.save_best
        if metric is None:
            return extra
        best = extra.get("best")
        value = record[metric]
        lower = "loss" in metric
        if best is not None and not (value < best["value"] if lower else value > best["value"]):
            return extra
        best = {"metric": metric, "value": value, "step": step}
        if world.main:
            def write(directory: Path) -> None:
                save_model(directory)
                (directory / BEST_FILE).write_text(json.dumps(best) + "\n", encoding="utf-8")

            write_atomically(self.config.output / BEST_DIR, write)
        return {**extra, "best": best}
