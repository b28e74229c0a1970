"""GradCache: a loss over the whole effective batch, backpropagated micro-batch by micro-batch.

Gao, Zhang, Han, Callan (2021), "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup" (arXiv:2101.06983). A loss L(r_1..r_B) that couples all rows of a batch through
their representations r (the contrastive loss, the distillation loss) cannot be split into
micro-batches by plain gradient accumulation: each micro-batch would see only its own negatives.
GradCache splits the chain rule at r instead:

1. forward every micro-batch k without autograd and keep r_k (memory: B × H floats);
2. compute L on the concatenated r (a leaf tensor) and its gradient g = ∂L/∂r;
3. forward micro-batch k again with autograd and backpropagate the surrogate
   ``local_k + Σ r_k · g_k`` (``g_k`` a constant), whose parameter gradient is
   ``∂local_k/∂θ + (∂L/∂r_k)(∂r_k/∂θ)``; summed over k this is exactly ∂(Σ local_k + L)/∂θ.

Dropout stays consistent between passes 1 and 3 because each micro-batch's forward replays the
RNG state captured before its first forward. The cost is one extra forward per micro-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import torch

Chunk = TypeVar("Chunk")
Forward = Callable[[Any], tuple[torch.Tensor, torch.Tensor]]


class RngReplay:
    """The CPU (and CUDA, for a CUDA ``device``) RNG state at construction, replayable later."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block from the captured state; the caller's RNG stream is left untouched."""
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def cached_backward(
    forward: Forward,
    chunks: Sequence[Chunk],
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    backward: Callable[[torch.Tensor], None],
    device: torch.device,
    no_sync: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accumulate into ``.grad`` the gradient of ``Σ_k local_k + batch_loss(cat_k r_k)``.

    ``forward(chunk) -> (r, local)``: ``r`` is the (b_k, H) representation the batch loss
    couples, ``local`` a scalar already normalised so that the sum over chunks is the full-batch
    value (e.g. a token-summed cross-entropy divided by the whole batch's token count).
    ``batch_loss`` receives the concatenated (B, H) representations in float32.
    ``backward(loss)`` runs the backward pass (e.g. ``scaler.scale(loss).backward()``).
    ``no_sync()`` wraps the forward and backward of every micro-batch but the last
    (``DistributedDataParallel.no_sync``: gradients are averaged over ranks once per step).

    With one chunk this is a plain forward/backward. Returns the detached
    ``(Σ local_k, batch_loss)``.
    """
    if len(chunks) == 1:
        rep, local = forward(chunks[0])
        coupled = batch_loss(rep.float())
        backward(local + coupled)
        return local.detach(), coupled.detach()

    states, reps = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RngReplay(device))
            reps.append(forward(chunk)[0].float())
    full = torch.cat(reps).requires_grad_()
    coupled = batch_loss(full)
    (rep_grad,) = torch.autograd.grad(coupled, full)
    rep_grads = rep_grad.split([r.shape[0] for r in reps])

    local_total = torch.zeros((), device=full.device)
    for k, (chunk, state, grad) in enumerate(zip(chunks, states, rep_grads)):
        with no_sync() if k < len(chunks) - 1 else nullcontext(), state.replay():
            rep, local = forward(chunk)
            backward(local + (rep.float() * grad).sum())
        local_total += local.detach()
    return local_total, coupled.detach()
