"""Checkpoint directories: atomic writes, keep-last-K rotation, RNG snapshots."""

import random

import numpy as np
import pytest
import torch

from model.checkpoint import (
    STATE_FILE,
    checkpoint_steps,
    clean_temporaries,
    latest_checkpoint,
    load_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_atomically,
)


def write_weights(value):
    def save(directory):
        torch.save({"w": torch.full((2,), float(value))}, directory / "weights.pt")

    return save


def test_keeps_last_k_and_finds_latest(tmp_path):
    for step in (2, 4, 6, 8):
        save_checkpoint(tmp_path, step, write_weights(step), {"step": step}, keep=2)
    assert [s for s, _ in checkpoint_steps(tmp_path)] == [6, 8]
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "checkpoint-8"
    assert load_trainer_state(latest) == {"step": 8}
    assert torch.load(latest / "weights.pt")["w"].tolist() == [8.0, 8.0]


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path):
    save_checkpoint(tmp_path, 1, write_weights(1), {"step": 1}, keep=0)

    def crash(directory):
        (directory / "partial").write_text("half")
        raise RuntimeError("basic_ios::clear: iostream error")  # how torch.save fails

    with pytest.raises(OSError, match=f"cannot write {tmp_path / 'checkpoint-2'}"):
        save_checkpoint(tmp_path, 2, crash, {"step": 2}, keep=0)
    assert latest_checkpoint(tmp_path).name == "checkpoint-1"
    assert not (tmp_path / "checkpoint-2").exists()
    clean_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1"]


def test_incomplete_directory_is_not_a_checkpoint(tmp_path):
    (tmp_path / "checkpoint-9").mkdir()
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(FileNotFoundError, match=STATE_FILE):
        load_trainer_state(tmp_path / "checkpoint-9")


def test_directory_set_aside_is_restored_when_its_successor_is_missing(tmp_path):
    """A kill between the two renames of a replacement leaves only the old copy: put it back."""
    write_atomically(tmp_path / "final", write_weights(1))
    (tmp_path / "final").rename(tmp_path / ".tmp-old-final-123")
    (tmp_path / ".tmp-final-123").mkdir()
    clean_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    assert torch.load(tmp_path / "final" / "weights.pt")["w"].tolist() == [1.0, 1.0]


def test_write_atomically_replaces_existing(tmp_path):
    target = tmp_path / "final"
    write_atomically(target, write_weights(1))
    write_atomically(target, write_weights(2))
    assert torch.load(target / "weights.pt")["w"].tolist() == [2.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_rng_state_round_trip_through_file(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    save_checkpoint(tmp_path, 1, write_weights(0), {"rng": rng_state()}, keep=0)
    expected = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(load_trainer_state(tmp_path / "checkpoint-1")["rng"])
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[:2] == expected[:2]
    assert torch.equal(got[2], expected[2])
