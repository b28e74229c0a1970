"""Losses against independent computations written with loops and numpy."""

import math

import numpy as np
import pytest
import torch

from model.losses import (
    am_softmax_loss,
    contrastive_loss,
    distill_loss,
    pair_targets,
    seq2seq_loss,
    seq2seq_targets,
)
from model.roformer import RoFormerSim, RoFormerSimConfig


def log_softmax_np(row):
    row = np.asarray(row, dtype=np.float64)
    return row - (row.max() + np.log(np.exp(row - row.max()).sum()))


def cos_np(u, v):
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


@pytest.fixture
def pair_batch():
    """Rows: [CLS] a [SEP] | b [SEP] | padding — segment ids 0 / 1 / 0, mask 1 / 1 / 0."""
    torch.manual_seed(0)
    segments = torch.tensor([
        [0, 0, 0, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 1],
        [0, 0, 1, 1, 0, 0, 0, 0],
    ])
    mask = torch.tensor([
        [1, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 0, 0],
    ])
    ids = torch.randint(1, 11, (3, 8)) * mask
    logits = torch.randn(3, 8, 11, dtype=torch.float64)
    return logits, ids, segments, mask


def test_seq2seq_loss_matches_a_loop(pair_batch):
    logits, ids, segments, mask = pair_batch
    terms = []
    for b in range(3):
        for t in range(7):
            if segments[b, t + 1] == 1 and mask[b, t + 1] == 1:
                terms.append(-log_softmax_np(logits[b, t].numpy())[ids[b, t + 1]])
    assert len(terms) == 3 + 4 + 2
    got = seq2seq_loss(logits, ids, segments, mask)
    assert got.item() == pytest.approx(np.mean(terms), rel=1e-12)


def test_seq2seq_ignores_padding_even_with_segment_one_padding(pair_batch):
    logits, ids, segments, mask = pair_batch
    padded_as_b = segments.masked_fill(mask == 0, 1)  # a collate that pads segment ids with 1
    assert seq2seq_loss(logits, ids, padded_as_b, mask).item() == pytest.approx(
        seq2seq_loss(logits, ids, segments, mask).item(), rel=1e-12
    )
    no_b = torch.zeros_like(segments)
    assert seq2seq_loss(logits, ids, no_b, mask).item() == 0.0


def test_seq2seq_targets_select_the_same_terms(pair_batch):
    logits, ids, segments, mask = pair_batch
    predict, targets = seq2seq_targets(ids, segments, mask)
    assert predict.shape == (3, 8) and targets.shape == (9,)
    assert predict[0].tolist() == [False, False, True, True, True, False, False, False]
    assert targets[:3].tolist() == ids[0, 3:6].tolist()
    selected = torch.nn.functional.cross_entropy(logits[predict], targets)
    assert selected.item() == pytest.approx(seq2seq_loss(logits, ids, segments, mask).item())


def test_pair_targets():
    assert pair_targets(6).tolist() == [1, 0, 3, 2, 5, 4]
    with pytest.raises(ValueError, match="even batch"):
        pair_targets(5)


def contrastive_loop(z, scale, margin=0.0):
    """−log softmax over candidates j ≠ i of scale·(cos(z_i, z_j) − margin·[j = partner])."""
    n = len(z)
    losses = []
    for i in range(n):
        partner = i ^ 1  # 2k <-> 2k+1
        logits = {j: scale * (cos_np(z[i], z[j]) - (margin if j == partner else 0.0))
                  for j in range(n) if j != i}
        log_z = math.log(sum(math.exp(v) for v in logits.values()))
        losses.append(log_z - logits[partner])
    return sum(losses) / n


def test_contrastive_loss_matches_a_loop():
    torch.manual_seed(1)
    pooled = torch.randn(6, 5, dtype=torch.float64)
    expected = contrastive_loop(pooled.numpy(), scale=20.0)
    assert contrastive_loss(pooled).item() == pytest.approx(expected, rel=1e-9)
    assert contrastive_loss(pooled, scale=5.0).item() == pytest.approx(
        contrastive_loop(pooled.numpy(), scale=5.0), rel=1e-9
    )
    with pytest.raises(ValueError, match="even batch"):
        contrastive_loss(pooled[:5])


def test_contrastive_loss_is_low_for_aligned_pairs_and_scale_invariant_in_norm():
    basis = torch.eye(4, dtype=torch.float64)
    aligned = basis.repeat_interleave(2, dim=0)  # rows 2k and 2k+1 identical, pairs orthogonal
    assert contrastive_loss(aligned).item() < 1e-6
    shuffled = aligned[[0, 2, 1, 3, 4, 6, 5, 7]]
    assert contrastive_loss(shuffled).item() > 10
    torch.testing.assert_close(contrastive_loss(aligned * 7.0), contrastive_loss(aligned))


def test_am_softmax_loss_matches_the_seed_formula():
    torch.manual_seed(2)
    pooled = torch.randn(8, 5, dtype=torch.float64)
    expected = contrastive_loop(pooled.numpy(), scale=30.0, margin=0.35)
    assert am_softmax_loss(pooled).item() == pytest.approx(expected, rel=1e-9)
    assert am_softmax_loss(pooled, s=10.0, m=0.0).item() == pytest.approx(
        contrastive_loss(pooled, scale=10.0).item(), rel=1e-9
    )


def test_distill_loss_matches_a_double_sum():
    torch.manual_seed(3)
    student = torch.randn(5, 4, dtype=torch.float64)
    teacher = torch.randn(5, 7, dtype=torch.float64)
    u, v = teacher.numpy(), student.numpy()
    total = sum((cos_np(u[i], u[j]) - cos_np(v[i], v[j])) ** 2 for i in range(5) for j in range(5))
    assert distill_loss(student, teacher).item() == pytest.approx(100 / 25 * total, rel=1e-9)
    assert distill_loss(student, student).item() == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="batches differ"):
        distill_loss(student, teacher[:4])


def test_distill_loss_does_not_train_the_teacher():
    student = torch.randn(4, 3, requires_grad=True)
    teacher = torch.randn(4, 3, requires_grad=True)
    distill_loss(student, teacher).backward()
    assert student.grad is not None and teacher.grad is None


def test_losses_run_in_float32_under_bf16_autocast():
    torch.manual_seed(4)
    pooled = torch.randn(6, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = contrastive_loss(pooled.bfloat16())
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(contrastive_loss(pooled.bfloat16().float()).item(), rel=1e-6)


def test_gradients_of_the_stage1_loss_reach_pooler_and_lm_head(pair_batch):
    torch.manual_seed(0)
    model = RoFormerSim(RoFormerSimConfig.preset("tiny", vocab_size=11))
    _, ids, segments, mask = pair_batch
    ids, segments, mask = ids[[0, 0, 1, 1]], segments[[0, 0, 1, 1]], mask[[0, 0, 1, 1]]
    out = model(ids, segments, mask, unilm=True)
    loss = seq2seq_loss(out.logits, ids, segments, mask) + contrastive_loss(out.pooled)
    loss.backward()
    for name in ("pooler.weight", "lm_head.dense.weight", "lm_head.decoder.bias",
                 "embeddings.word.weight", "layers.0.attn.qkv.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
