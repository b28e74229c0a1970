"""Generation: cache == no cache, sampler semantics, determinism, ranking, CLI and bad input."""

import json
from functools import partial

import numpy as np
import pytest
import torch

from model.encode import encode, load_checkpoint
from model.generate import (
    SamplingConfig,
    _sample_sorted,
    decode_uncached,
    generate,
    run,
    sample_candidates,
    sample_next,
)

TEXTS = ["广州和深圳哪个好？", "科学技术是[MASK][MASK]生产力", "你好"]

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


def test_greedy_with_cache_equals_without_token_for_token(loaded):
    config = SamplingConfig(n=2, top_k=1, max_len=24)
    cached = sample_candidates(*loaded, TEXTS, config)
    assert cached == sample_candidates(*loaded, TEXTS, config, decoder=decode_uncached)
    last_only = partial(decode_uncached, all_logits=False)
    assert cached == sample_candidates(*loaded, TEXTS, config, decoder=last_only)
    assert [len(rows) for rows in cached] == [2, 2, 2]
    assert loaded[1].encode(TEXTS[1])[0].count(loaded[1].mask_id) == 2  # [MASK] kept as a token
    assert all(len(ids) == 24 or ids[-1] == loaded[1].sep_id for rows in cached for ids in rows)


def test_chunking_and_batch_neighbours_do_not_change_greedy_output(loaded):
    config = SamplingConfig(n=3, top_k=1, max_len=16)
    whole = sample_candidates(*loaded, TEXTS, config)
    assert whole == sample_candidates(*loaded, TEXTS, config, max_cache_mb=0.001)
    assert whole[1:] == sample_candidates(*loaded, TEXTS[1:], config)


def test_sampling_is_deterministic_under_a_seed(loaded):
    config = SamplingConfig(n=6, top_p=0.9, max_len=12, seed=7)
    first = sample_candidates(*loaded, TEXTS, config)
    assert first == sample_candidates(*loaded, TEXTS, config)
    assert first != sample_candidates(*loaded, TEXTS, SamplingConfig(n=6, top_p=0.9, max_len=12))
    assert len({tuple(ids) for ids in first[0]}) > 1


def _reference_sample(probs, u, top_k, top_p):
    """Sort-based top-k → renormalise → top-p, then inverse CDF in vocabulary order."""
    order = np.argsort(-probs, kind="stable")
    keep = order[:top_k] if top_k else order
    mass = probs[keep] / probs[keep].sum()
    before = np.cumsum(mass) - mass
    keep = keep[before < top_p]
    kept = np.zeros_like(probs)
    kept[keep] = probs[keep]
    cdf = np.cumsum(kept)
    return int(np.searchsorted(cdf, u * cdf[-1], side="right"))


def _sorted_path(logits, uniforms, top_k, top_p):
    """The sampler's path off CPU (full sort in torch), run on CPU tensors."""
    return _sample_sorted(torch.softmax(logits, dim=-1), uniforms, top_k, top_p)


@pytest.mark.parametrize("sampler", [sample_next, _sorted_path])
@pytest.mark.parametrize(("top_k", "top_p"), [(0, 1.0), (0, 0.9), (0, 0.3), (5, 1.0), (8, 0.6)])
def test_sample_next_matches_a_sort_based_reference(sampler, top_k, top_p):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=generator, dtype=torch.float64) * 2
    uniforms = torch.rand(64, generator=generator, dtype=torch.float64)
    got = sampler(logits.float(), uniforms, top_k, top_p)
    probs = torch.softmax(logits.float(), dim=-1).double().numpy()
    expected = [_reference_sample(p, u, top_k, top_p) for p, u in zip(probs, uniforms.numpy())]
    assert got.tolist() == expected


@pytest.mark.parametrize(("top_k", "top_p"), [(0, 0.95), (0, 0.5), (40, 0.9)])
def test_sample_next_matches_the_reference_on_rows_of_every_sharpness(top_k, top_p):
    """Rows from nearly flat to peaked over a 12,000-token vocabulary: the CPU path groups them
    by nucleus size, each group with its own window of ranks."""
    generator = torch.Generator().manual_seed(2)
    temperature = torch.linspace(0.2, 8.0, 72, dtype=torch.float64)[:, None]
    logits = (torch.randn(72, 12000, generator=generator, dtype=torch.float64) * temperature)
    uniforms = torch.rand(72, generator=generator, dtype=torch.float64)
    probs = torch.softmax(logits.float(), dim=-1).double().numpy()
    expected = [_reference_sample(p, u, top_k, top_p) for p, u in zip(probs, uniforms.numpy())]
    assert sample_next(logits.float(), uniforms, top_k, top_p).tolist() == expected
    assert _sorted_path(logits.float(), uniforms, top_k, top_p).tolist() == expected
    torch.set_num_threads(2)  # row groups sampled by two worker threads
    try:
        assert sample_next(logits.float(), uniforms, top_k, top_p).tolist() == expected
    finally:
        torch.set_num_threads(1)


def test_sample_next_matches_the_reference_on_a_large_vocabulary():
    """Near-uniform rows (and, alone, peaked ones) take the windowed partial sort; row 0 alone
    hides its small values from the strided estimate, so its threshold falls beyond the window:
    a full sort."""
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(24, 12000, generator=generator, dtype=torch.float64) * 0.5
    peaked = torch.randn(8, 12000, generator=generator, dtype=torch.float64) * 3
    logits[0] = logits[0] / 50 - 3  # no ties: the reference cuts ties by vocabulary order
    logits[0, ::16] = 0.0
    uniforms = torch.rand(24, generator=generator, dtype=torch.float64)
    got = sample_next(logits.float(), uniforms, 0, 0.95)
    probs = torch.softmax(logits.float(), dim=-1).double().numpy()
    expected = [_reference_sample(p, u, 0, 0.95) for p, u in zip(probs, uniforms.numpy())]
    assert got.tolist() == expected
    assert sample_next(logits[:1].float(), uniforms[:1], 0, 0.95).tolist() == expected[:1]
    probs = torch.softmax(peaked.float(), dim=-1).double().numpy()
    expected = [_reference_sample(p, u, 0, 0.95) for p, u in zip(probs, uniforms.numpy())]
    assert sample_next(peaked.float(), uniforms[:8], 0, 0.95).tolist() == expected


def test_sample_next_frequencies_follow_the_kept_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    uniforms = (torch.arange(1000, dtype=torch.float64) + 0.5) / 1000
    picks = sample_next(logits.expand(1000, 4), uniforms, top_k=0, top_p=0.9)
    counts = torch.bincount(picks, minlength=4).tolist()
    assert counts == [526, 316, 158, 0]  # 0.5/0.95, 0.3/0.95, 0.15/0.95 of 1000 stratified draws
    greedy = sample_next(logits.expand(1000, 4), uniforms, top_k=1, top_p=1.0)
    assert set(greedy.tolist()) == {0}
    assert set(sample_next(logits, torch.tensor([0.999999999]), 0, 1.0).tolist()) == {3}


def test_generate_ranks_unique_candidates_by_cosine(loaded):
    model, tokenizer = loaded
    results = generate(model, tokenizer, TEXTS, SamplingConfig(n=12, max_len=10, seed=1), k=5)
    assert [r["text"] for r in results] == TEXTS
    for result in results:
        texts = [c["text"] for c in result["candidates"]]
        scores = [c["score"] for c in result["candidates"]]
        assert 0 < len(texts) <= 5 and len(set(texts)) == len(texts)
        assert result["text"] not in texts and all(t.strip() for t in texts)
        assert scores == sorted(scores, reverse=True)
        vectors = encode(model, tokenizer, [result["text"], *texts])
        np.testing.assert_allclose(scores, vectors[1:] @ vectors[0], atol=1e-5)


def test_copies_of_the_input_are_dropped(loaded, monkeypatch):
    model, tokenizer = loaded
    text = "Hello 世界"
    copies = [tokenizer.encode(t, maxlen=None)[0][1:] for t in (text, "hello 世界", "你好")]
    monkeypatch.setattr("model.generate.sample_candidates", lambda *a, **k: [copies * 2])
    [result] = generate(model, tokenizer, [text], SamplingConfig(n=6))
    assert [c["text"] for c in result["candidates"]] == ["你好"]


@pytest.mark.parametrize(("texts", "error", "message"), [
    (["好", ""], ValueError, r"texts\[1\] is empty"),
    ([3], TypeError, r"texts\[0\] is int"),
])
def test_bad_inputs_are_named(loaded, texts, error, message):
    with pytest.raises(error, match=message):
        generate(*loaded, texts, SamplingConfig(n=2, max_len=4))


def test_bad_settings(loaded):
    with pytest.raises(ValueError, match="exceeds the model's max_position"):
        sample_candidates(*loaded, ["好"], SamplingConfig(n=1, max_len=100))
    for bad in [dict(n=0), dict(top_p=0.0), dict(top_k=-1), dict(max_len=0)]:
        with pytest.raises(ValueError):
            SamplingConfig(**bad)
    with pytest.raises(ValueError, match="k must be"):
        generate(*loaded, ["好"], SamplingConfig(n=1), k=0)


def test_cli_writes_jsonl_to_output_and_stdout(tiny_checkpoint, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    common = ["--checkpoint", str(tiny_checkpoint), "--n", "8", "--k", "3", "--max_len", "8",
              "--seed", "3"]
    run([*common, "--input", str(source), "--output", str(tmp_path / "out.jsonl")])
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["text"] for r in records] == TEXTS
    assert all(set(c) == {"text", "score"} for r in records for c in r["candidates"])
    capsys.readouterr()
    run([*common, *TEXTS])
    assert capsys.readouterr().out.splitlines() == lines


def test_cli_needs_exactly_one_input_source(tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run(["--checkpoint", str(tiny_checkpoint)])
    with pytest.raises(FileNotFoundError, match="lacks"):
        run(["--checkpoint", str(tmp_path), "你好"])
