"""RoFormer-Sim training losses, one pure function each on tensors (no model inside).

Sources: ZhuiyiTechnology/roformer-sim ``train/stage1.py`` (seq2seq + in-batch contrastive) and
``train/stage2.py`` (distillation), https://kexue.fm/archives/8454; AM-Softmax: Wang et al. 2018
(https://arxiv.org/abs/1801.05599) as used for sentence similarity in https://kexue.fm/archives/5743.

Batches hold each pair twice, as adjacent rows (a→b at 2k, b→a at 2k+1), so the in-batch
positive of row 2k is row 2k+1 and vice versa. Cosine matrices are computed in float32 even
under autocast: scaled by 20-30, bf16 cosines would move the logits by whole units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _follows_in_b(token_type_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
    """(B, L-1) bool: token t+1 is a real (not padding) segment-b token."""
    follows = token_type_ids[:, 1:].bool()
    if attention_mask is not None:
        follows = follows & attention_mask[:, 1:].bool()
    return follows


def seq2seq_targets(
    input_ids: Tensor, token_type_ids: Tensor, attention_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Which positions predict a segment-b token, and those tokens.

    input_ids, token_type_ids, attention_mask: (B, L). Returns ``predict`` (B, L) bool, True at
    position t when token t+1 is a real segment-b token, and ``targets`` (N,) = those tokens t+1 in
    row-major order. ``F.cross_entropy(model.lm_head(h[predict]), targets)`` equals
    ``seq2seq_loss`` while running the LM head on the N predicting positions only.
    """
    follows = _follows_in_b(token_type_ids, attention_mask)  # (B, L-1)
    predict = F.pad(follows, (0, 1))  # (B, L): position t predicts token t+1
    return predict, input_ids[:, 1:][follows]


def seq2seq_loss(
    logits: Tensor, input_ids: Tensor, token_type_ids: Tensor, attention_mask: Tensor | None = None
) -> Tensor:
    """UniLM generation loss: mean cross-entropy of predicting each segment-b token from the
    position before it.

    L_gen = Σ_{b,t} m[b,t+1] · −log softmax(logits[b,t])[x[b,t+1]] / Σ_{b,t} m[b,t+1],
    m = segment id × attention mask (stage1.py ``compute_loss_of_seq2seq``: ``y_mask`` = segment
    ids, shifted by one). logits: (B, L, V); input_ids, token_type_ids, attention_mask: (B, L).
    Returns a scalar; 0 when the batch has no segment-b token.
    """
    follows = _follows_in_b(token_type_ids, attention_mask)  # (B, L-1)
    labels = input_ids[:, 1:].masked_fill(~follows, -100)  # (B, L-1)
    total = F.cross_entropy(
        logits[:, :-1].flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum"
    )
    return total / follows.sum().clamp(min=1)


def pair_targets(n: int, device: torch.device | None = None) -> Tensor:
    """In-batch positives: row 2k ↔ row 2k+1, i.e. target(i) = i + 1 − 2·(i mod 2). Shape (n,)."""
    if n % 2:
        raise ValueError(f"in-batch pair losses need an even batch (rows 2k, 2k+1), got {n}")
    i = torch.arange(n, device=device)
    return i + 1 - 2 * (i % 2)


def cosine_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
    """cos(x_i, y_j) for all i, j, in float32 at least: (n, d), (m, d) -> (n, m); y defaults to x.

    L2 normalisation as Keras ``l2_normalize`` / ``F.normalize`` (norm floored at 1e-12).
    """
    with torch.autocast(x.device.type, enabled=False):
        x = F.normalize(x.to(torch.promote_types(x.dtype, torch.float32)), dim=-1)
        y = x if y is None else F.normalize(y.to(x.dtype), dim=-1)
        return x @ y.T


def contrastive_loss(pooled: Tensor, scale: float = 20.0) -> Tensor:
    """In-batch contrastive loss of RoFormer-Sim (stage1.py ``compute_loss_of_similarity``).

    S = cos(z_i, z_j) − 10¹²·I (a sentence is not its own candidate), logits = scale · S,
    L_sim = mean_i CE(logits_i, target_i) with target(2k) = 2k+1, target(2k+1) = 2k.
    pooled: (B, H) with B even. Returns a scalar.
    """
    n = pooled.shape[0]
    targets = pair_targets(n, pooled.device)
    sim = cosine_matrix(pooled)  # (B, B)
    sim = sim - torch.eye(n, device=pooled.device) * 1e12
    return F.cross_entropy(sim * scale, targets)


def am_softmax_loss(pooled: Tensor, s: float = 30.0, m: float = 0.35) -> Tensor:
    """AM-Softmax variant of the in-batch contrastive loss (Wang et al. 2018; seed 003).

    −log e^{s(cos θ_t − m)} / (e^{s(cos θ_t − m)} + Σ_{i≠t, i≠self} e^{s·cos θ_i}),
    averaged over rows; θ_i is the angle between row z and candidate i, t the paired row as in
    ``contrastive_loss``. pooled: (B, H) with B even. Returns a scalar.
    """
    n = pooled.shape[0]
    targets = pair_targets(n, pooled.device)
    sim = cosine_matrix(pooled)  # (B, B)
    margin = F.one_hot(targets, n).to(sim.dtype) * m  # subtract m at the target only
    sim = sim - margin - torch.eye(n, device=pooled.device) * 1e12
    return F.cross_entropy(sim * s, targets)


def distill_loss(student_pooled: Tensor, teacher_pooled: Tensor, lam: float = 100.0) -> Tensor:
    """Similarity distillation of RoFormer-Sim stage 2 (stage2.py, kexue.fm/archives/8454).

    L_sim = λ/n² Σ_i Σ_j (cos(u_i, u_j) − cos(v_i, v_j))², u = teacher, v = student, λ = 100.
    student_pooled: (n, H_s); teacher_pooled: (n, H_t), treated as a constant (detached).
    Returns a scalar.
    """
    if student_pooled.shape[0] != teacher_pooled.shape[0]:
        raise ValueError(
            f"student and teacher batches differ: {student_pooled.shape[0]} vs "
            f"{teacher_pooled.shape[0]}"
        )
    student = cosine_matrix(student_pooled)  # (n, n)
    teacher = cosine_matrix(teacher_pooled.detach())  # (n, n)
    return lam * (student - teacher).square().mean()
