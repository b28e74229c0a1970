"""``runs/NAME/metrics.jsonl``: one JSON object per line, written by rank 0 as training goes.

Training records: ``step, loss, loss_gen, loss_sim, lr, grad_norm, tokens, tokens_per_s`` (the
losses of the global batch). Evaluation records (``--eval_every``) carry ``"kind": "eval"``,
the ``step`` they follow and ``valid_loss``, ``valid_loss_gen``, ``valid_loss_sim`` and one
``sts_TASK`` Spearman per ``--sts_dev`` file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

METRICS_FILE = "metrics.jsonl"
EVAL = "eval"


def read_metrics(run_dir: Path, kind: str | None = "train") -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl`` of ``kind`` (``"train"``, ``"eval"``, ``None``:
    all); a torn last line (a killed write) is dropped. A bad line before the last is a
    ``ValueError`` naming it: stopping there would drop every record after it, and a resume
    (``truncate_metrics``) would then rewrite the file without them."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON record (only the last line may be "
                             "torn)") from None
        if kind is None or record.get("kind", "train") == kind:
            records.append(record)
    return records


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Keep only records up to ``step`` (those after the resumed checkpoint are replayed)."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return
    kept = [r for r in read_metrics(run_dir, None) if r["step"] <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    tmp.replace(path)


class MetricsLog:
    """Appends records to ``run_dir/metrics.jsonl``, creating it at the first record (a run that
    fails before its first step leaves no file that would make it look started)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / METRICS_FILE
        self._file: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        try:
            if self._file is None:
                self._file = open(self.path, "a", encoding="utf-8")
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as err:
            raise OSError(f"cannot write {self.path}: {err.strerror or err}") from err

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
