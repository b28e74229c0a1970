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


@pytest.fixture(scope="session")
def vocab(shared_data) -> Path:
    """The RoFormer-Sim char vocabulary (12k entries)."""
    return shared_data / "vocab" / "roformer-sim-char" / "vocab.txt"


@pytest.fixture(scope="session")
def lcqmc_positives(shared_data) -> list[tuple[str, str]]:
    """The real (text1, text2) pairs labelled 1 in ``sts/LCQMC.valid.data``."""
    lines = (shared_data / "sts" / "LCQMC.valid.data").read_text(encoding="utf-8").splitlines()
    return [(a, b) for a, b, label in (line.split("\t") for line in lines) if label == "1"]


@pytest.fixture(scope="session")
def sts_dev(shared_data, tmp_path_factory) -> Path:
    """A folder with the first 40 pairs of two real STS dev files (LCQMC, BQ)."""
    out = tmp_path_factory.mktemp("sts-dev")
    for name in ("LCQMC.valid.data", "BQ.valid.data"):
        lines = (shared_data / "sts" / name).read_text(encoding="utf-8").splitlines()[:40]
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
