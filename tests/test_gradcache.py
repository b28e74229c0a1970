"""GradCache: micro-batched gradients equal full-batch gradients of a batch-coupled loss."""

import pytest
import torch
import torch.nn.functional as F

from model.gradcache import RngReplay, cached_backward


class Encoder(torch.nn.Module):
    """A small stand-in for the encoder: (B, D) → representation (B, H) and a per-row local loss."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(16, 8),
        )
        self.head = torch.nn.Linear(8, 3)

    def forward(self, chunk):
        x, y = chunk
        rep = self.body(x)
        local_sum = F.cross_entropy(self.head(rep), y, reduction="sum")
        return rep, local_sum


def contrastive(rep: torch.Tensor) -> torch.Tensor:
    """In-batch softmax over cosine similarities; row 2k's positive is 2k+1 and vice versa."""
    z = F.normalize(rep, dim=1)
    sims = z @ z.T * 20 - torch.eye(len(z)) * 1e12
    target = torch.arange(len(z)) ^ 1
    return F.cross_entropy(sims, target)


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def run_cached(model, x, y, k):
    model.zero_grad()
    n = len(x)
    chunks = list(zip(x.chunk(k), y.chunk(k)))

    def forward(chunk):
        rep, local_sum = model(chunk)
        return rep, local_sum / n

    local, coupled = cached_backward(
        forward, chunks, contrastive, lambda loss: loss.backward(), torch.device("cpu")
    )
    return local + coupled, grads(model)


@pytest.mark.parametrize("k", [2, 4])
def test_gradients_equal_full_batch_without_dropout(k):
    torch.manual_seed(0)
    model = Encoder(dropout=0.0)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))

    model.zero_grad()
    rep, local_sum = model((x, y))
    full_loss = local_sum / len(x) + contrastive(rep)
    full_loss.backward()
    full_grads = grads(model)

    loss, cached_grads = run_cached(model, x, y, k)
    assert loss.item() == pytest.approx(full_loss.item(), abs=1e-6)
    for a, b in zip(cached_grads, full_grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_dropout_masks_replayed_between_passes():
    """With dropout on, the cached gradients equal a sequential autograd forward of the chunks
    drawn from the same RNG state: the second forward replays the first one's masks."""
    torch.manual_seed(0)
    model = Encoder(dropout=0.3)
    x, y = torch.randn(12, 6), torch.randint(0, 3, (12,))

    torch.manual_seed(1)
    model.zero_grad()
    outs = [model(chunk) for chunk in zip(x.chunk(3), y.chunk(3))]
    rep = torch.cat([o[0] for o in outs])
    reference = sum(o[1] for o in outs) / len(x) + contrastive(rep)
    reference.backward()
    reference_grads = grads(model)

    torch.manual_seed(1)
    loss, cached_grads = run_cached(model, x, y, 3)
    assert loss.item() == pytest.approx(reference.item(), abs=1e-6)
    for a, b in zip(cached_grads, reference_grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_single_chunk_is_plain_backward():
    torch.manual_seed(0)
    model = Encoder(dropout=0.0)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    model.zero_grad()
    rep, local_sum = model((x, y))
    (local_sum / 8 + contrastive(rep)).backward()
    expected = grads(model)
    _, got = run_cached(model, x, y, 1)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_rng_replay_leaves_outer_stream_untouched():
    torch.manual_seed(3)
    state = RngReplay(torch.device("cpu"))
    first = torch.rand(4)
    after = torch.get_rng_state()
    with state.replay():
        assert torch.equal(torch.rand(4), first)
    assert torch.equal(torch.get_rng_state(), after)
