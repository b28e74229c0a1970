"""Shared fixtures: the team's real sample data lives in ``../shared/data`` beside the checkout."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SIMPAIRS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``shared/data``; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set SIMPAIRS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_checkpoint(shared_data, tmp_path_factory) -> Path:
    """A seeded random ``tiny`` RoFormer-Sim over the real 12k-char vocab, saved with
    ``save_pretrained`` (config.json, model.safetensors, vocab.txt)."""
    import torch

    from model import RoFormerSim, RoFormerSimConfig

    vocab = shared_data / "vocab" / "roformer-sim-char" / "vocab.txt"
    torch.manual_seed(0)
    model = RoFormerSim(RoFormerSimConfig.preset("tiny", vocab_size=12000))
    path = tmp_path_factory.mktemp("tiny-checkpoint")
    model.save_pretrained(path, vocab_file=vocab)
    return path


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's small-tensor torch work on one thread: on a busy 2-core machine the
    thread hand-offs of tiny ops cost far more than the ops themselves."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
