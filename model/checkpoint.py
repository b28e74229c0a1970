"""Training checkpoints: atomic directory writes, keep-last-K rotation, and RNG state capture.

A checkpoint is a ``from_pretrained`` directory (``config.json``, weights, ``vocab.txt``) plus
``trainer_state.pt`` holding everything else a resumed run needs: step, optimizer, scheduler,
AMP scaler, data-stream position and the Python / NumPy / torch (CPU and CUDA) RNG states.

Atomicity: the directory is written under a hidden temporary name in the run directory and
renamed into place (``os.rename`` is atomic within one file system), so a run killed mid-save
leaves either the previous complete checkpoint or the new complete one, never a half-written
``checkpoint-STEP``. A checkpoint counts as complete only when ``trainer_state.pt`` is inside;
leftover temporaries are removed by :func:`clean_temporaries`.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

STATE_FILE = "trainer_state.pt"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".tmp-old-"


def rng_state() -> dict[str, Any]:
    """Snapshot of every RNG the training loop draws from, in a ``weights_only``-loadable form."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by :func:`rng_state`."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_steps(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``run_dir`` as ``(step, path)``, oldest first."""
    found = []
    if run_dir.is_dir():
        for child in run_dir.iterdir():
            match = _CHECKPOINT_RE.match(child.name)
            if match and (child / STATE_FILE).is_file():
                found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, or ``None``."""
    steps = checkpoint_steps(run_dir)
    return steps[-1][1] if steps else None


def clean_temporaries(run_dir: Path) -> None:
    """Remove half-written directories left by a run killed while saving; a complete directory
    set aside for replacement whose successor never arrived is put back."""
    if not run_dir.is_dir():
        return
    for child in sorted(run_dir.iterdir()):
        if not (child.name.startswith(_TMP_PREFIX) and child.is_dir()):
            continue
        if child.name.startswith(_OLD_PREFIX):
            original = run_dir / child.name[len(_OLD_PREFIX):].rsplit("-", 1)[0]
            if not original.exists():
                os.rename(child, original)
                continue
        shutil.rmtree(child)


def write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` then rename ``tmp_dir`` to ``target`` (replacing an old one).

    ``target``'s parent must exist; the temporary lives beside ``target`` so the rename never
    crosses a file system. A failed write (disk full, no permission) removes the temporary and
    raises ``OSError`` naming ``target``; the old ``target`` stays.
    """
    tmp = target.parent / f"{_TMP_PREFIX}{target.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        write(tmp)
        _fsync_tree(tmp)
    except (OSError, RuntimeError, SafetensorError) as err:  # how torch.save, save_file fail
        shutil.rmtree(tmp, ignore_errors=True)
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise OSError(f"cannot write {target} (disk full or not writable?): {reason}") from err
    old = None
    if target.exists():
        old = target.parent / f"{_OLD_PREFIX}{target.name}-{os.getpid()}"
        os.rename(target, old)
    os.rename(tmp, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old)
    return target


def save_checkpoint(
    run_dir: Path,
    step: int,
    save_model: Callable[[Path], None],
    trainer_state: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``run_dir/checkpoint-STEP`` atomically and delete all but the newest ``keep``.

    ``save_model(dir)`` writes the ``from_pretrained`` files; ``trainer_state`` goes to
    ``trainer_state.pt``. ``keep <= 0`` keeps every checkpoint.
    """

    def write(tmp: Path) -> None:
        save_model(tmp)
        torch.save(trainer_state, tmp / STATE_FILE)

    path = write_atomically(run_dir / f"checkpoint-{step}", write)
    if keep > 0:
        for _, old in checkpoint_steps(run_dir)[:-keep]:
            shutil.rmtree(old)
    return path


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """Read ``trainer_state.pt`` (tensors and plain Python values only: ``weights_only``);
    ``ValueError`` naming the file when it is truncated or corrupt."""
    path = checkpoint / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint}: incomplete training checkpoint (no {STATE_FILE})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: truncated or corrupt ({err})") from err


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
