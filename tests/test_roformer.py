"""RoFormer-Sim encoder: parity with transformers' RoFormer, UniLM mask, KV cache, weights I/O."""

import json

import pytest
import torch

from model.roformer import (
    RoFormerSim,
    RoFormerSimConfig,
    apply_rotary,
    attention_bias,
    unilm_mask,
)

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


def tiny(**overrides):
    """A tiny config with dropout off and large weights, so that mistakes show up in outputs."""
    kw = dict(dropout=0.0, attention_dropout=0.0, initializer_range=0.2)
    return RoFormerSimConfig.preset("tiny", **{**kw, **overrides})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RoFormerSim(tiny()).eval()


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def batch():
    """Three pair rows: different split points, right padding in rows 1 and 2."""
    torch.manual_seed(1)
    ids = torch.randint(1, 128, (3, 10))
    segments = torch.tensor([[0] * 4 + [1] * 6, [0] * 6 + [1] * 4, [0] * 3 + [1] * 3 + [0] * 4])
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 6:] = 0
    ids = ids * mask
    return ids, segments, mask


def additive(mask):
    """Boolean (B, Lq, Lk) visibility -> HF 4D additive mask (B, 1, Lq, Lk)."""
    neg = torch.finfo(torch.float32).min
    return torch.zeros(mask.shape).masked_fill(~mask, neg)[:, None]


# ---------------------------------------------------------------------------------------------
# config


def test_presets_and_overrides():
    base = RoFormerSimConfig.preset("base")
    assert (base.hidden_size, base.num_layers, base.num_heads, base.intermediate_size) == (
        768, 12, 12, 3072,
    )
    assert base.vocab_size == 12000
    small = RoFormerSimConfig.preset("small", dropout=0.2)
    assert (small.hidden_size, small.num_layers, small.num_heads, small.intermediate_size) == (
        384, 6, 6, 1536,
    )
    assert small.dropout == 0.2
    with pytest.raises(ValueError, match="unknown preset"):
        RoFormerSimConfig.preset("huge")
    with pytest.raises(ValueError, match="multiple of num_heads"):
        RoFormerSimConfig(hidden_size=30, num_heads=4)


def test_config_json_round_trip(tmp_path):
    cfg = tiny(embedding_size=16)
    cfg.to_json(tmp_path / "c.json")
    assert RoFormerSimConfig.from_json(tmp_path / "c.json") == cfg
    assert RoFormerSimConfig.from_dict(cfg.to_hf_dict()) == cfg
    with pytest.raises(ValueError, match="unknown RoFormerSimConfig fields"):
        RoFormerSimConfig.from_dict({"hidden": 3})


def test_reads_the_published_roformer_sim_bert_config(shared_data):
    folder = shared_data / "vocab" / "roformer-sim-char"
    base, small = (
        json.loads((folder / f"bert_config_roformer-sim-char-ft_{size}.json").read_text())
        for size in ("L-12_H-768_A-12", "L-6_H-384_A-6")
    )
    keep = dict(dropout=0.1, attention_dropout=0.1)
    assert RoFormerSimConfig.from_dict(base) == RoFormerSimConfig.preset("base", **keep)
    assert RoFormerSimConfig.from_dict(small) == RoFormerSimConfig.preset("small", **keep)


def test_hf_config_reads_our_config_json(saved, model):
    hf = transformers.RoFormerConfig.from_pretrained(saved)
    cfg = model.config
    assert (hf.hidden_size, hf.num_hidden_layers, hf.num_attention_heads) == (
        cfg.hidden_size, cfg.num_layers, cfg.num_heads,
    )
    assert (hf.vocab_size, hf.max_position_embeddings, hf.embedding_size) == (
        cfg.vocab_size, cfg.max_position, cfg.hidden_size,
    )


# ---------------------------------------------------------------------------------------------
# masks and rotary


def test_unilm_mask_on_hand_written_segments():
    segments = torch.tensor([[0, 0, 0, 1, 1, 1]])
    expected = torch.tensor([
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(unilm_mask(segments)[0], expected)
    # all segment a: fully bidirectional; all segment b after CLS: causal from position 1
    assert unilm_mask(torch.zeros(1, 4, dtype=torch.long)).all()
    causal = unilm_mask(torch.tensor([[0, 1, 1, 1]]))[0]
    assert torch.equal(causal[1:, 1:], torch.ones(3, 3).tril().bool())
    assert causal[:, 0].all() and not causal[0, 1:].any()


def test_attention_bias_combines_padding_and_unilm():
    segments = torch.tensor([[0, 0, 1, 1, 0, 0]])  # two padding positions at the end
    padding = torch.tensor([[1, 1, 1, 1, 0, 0]])
    got = attention_bias(padding, segments, unilm=True, q_len=6)[0, 0]
    expected = torch.tensor([
        [1, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],  # padding queries see the real tokens (as in HF), never padding keys
        [1, 1, 1, 1, 0, 0],
    ], dtype=torch.bool)
    assert torch.equal(got, expected)
    assert attention_bias(None, None, unilm=False, q_len=6) is None
    bidirectional = attention_bias(padding, None, unilm=False, q_len=6)  # broadcast over queries
    assert torch.equal(bidirectional.expand(1, 1, 6, 6)[0, 0], padding.bool().expand(6, 6))
    assert torch.equal(attention_bias(padding, None, unilm=True, q_len=6), bidirectional)


def test_attention_bias_with_cache_is_causal_over_new_tokens():
    got = attention_bias(None, None, unilm=False, q_len=2, past_len=3)[0, 0]
    assert torch.equal(got, torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))


def test_rotary_rotates_interleaved_pairs():
    x = torch.randn(1, 3, 1, 4, dtype=torch.float64)  # (B, L, nh, hs)
    theta = torch.tensor([0.3, 1.1], dtype=torch.float64)
    out = apply_rotary(x, theta.sin()[None, None], theta.cos()[None, None])
    for i, t in enumerate(theta.tolist()):
        c, s = torch.cos(torch.tensor(t)), torch.sin(torch.tensor(t))
        x0, x1 = x[..., 2 * i], x[..., 2 * i + 1]
        assert torch.allclose(out[..., 2 * i], x0 * c - x1 * s)
        assert torch.allclose(out[..., 2 * i + 1], x1 * c + x0 * s)


# ---------------------------------------------------------------------------------------------
# parity with transformers


@pytest.fixture(scope="module")
def hf_model(saved):
    return transformers.RoFormerModel.from_pretrained(saved, attn_implementation="eager").eval()


@torch.no_grad()
def test_parity_with_hf_bidirectional_padded(model, hf_model, batch):
    ids, segments, mask = batch
    ours = model(ids, segments, mask, output_hidden_states=True)
    theirs = hf_model(
        input_ids=ids, token_type_ids=segments, attention_mask=mask, output_hidden_states=True
    )
    assert ours.last_hidden_state.shape == (3, 10, 32)
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, atol=1e-5, rtol=0)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == 3
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@torch.no_grad()
def test_parity_with_hf_unilm_as_4d_additive_mask(model, hf_model, batch):
    ids, segments, mask = batch
    ours = model(ids, segments, mask, unilm=True).last_hidden_state
    visible = unilm_mask(segments) & mask.bool()[:, None, :]
    theirs = hf_model(
        input_ids=ids, token_type_ids=segments, attention_mask=additive(visible)
    ).last_hidden_state
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    bidirectional = model(ids, segments, mask).last_hidden_state
    assert not torch.allclose(ours, bidirectional, atol=1e-3)


@torch.no_grad()
def test_lm_head_parity_with_hf_causal_lm(model, saved, batch):
    ids, segments, mask = batch
    hf = transformers.RoFormerForCausalLM.from_pretrained(saved).eval()
    visible = unilm_mask(segments) & mask.bool()[:, None, :]
    theirs = hf(input_ids=ids, token_type_ids=segments, attention_mask=additive(visible)).logits
    ours = model(ids, segments, mask, unilm=True).logits
    assert ours.shape == (3, 10, 128)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# forward, cache, gradients


@torch.no_grad()
def test_outputs_and_optional_logits(model, batch):
    ids, segments, mask = batch
    out = model(ids, segments, mask, return_logits=False)
    assert out.logits is None and out.hidden_states is None and out.past_key_values is None
    assert out.pooled.shape == (3, 32)
    torch.testing.assert_close(out.pooled, model.pooler(out.last_hidden_state[:, 0]))
    logits = model(ids, segments, mask).logits
    torch.testing.assert_close(model.lm_head(out.last_hidden_state), logits)
    # no segment ids = all zeros
    torch.testing.assert_close(
        model(ids).last_hidden_state, model(ids, torch.zeros_like(ids)).last_hidden_state
    )


@torch.no_grad()
def test_incremental_decoding_with_cache_equals_full_unilm_forward(model):
    torch.manual_seed(2)
    ids = torch.randint(1, 128, (2, 12))
    segments = torch.tensor([[0] * 5 + [1] * 7] * 2)
    full = model(ids, segments, unilm=True).logits
    out = model(ids[:, :5], segments[:, :5], unilm=True, use_cache=True, return_logits=False)
    cache = out.past_key_values
    assert len(cache) == 2 and cache[0][0].shape == (2, 2, 5, 16)
    for t in range(5, 12):
        step = ids[:, t : t + 1], segments[:, t : t + 1]
        out = model(*step, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        torch.testing.assert_close(out.logits[:, -1], full[:, t], atol=1e-5, rtol=0)
    assert cache[0][0].shape == (2, 2, 12, 16)
    # several new tokens at once attend causally among themselves
    prompt = model(ids[:, :5], segments[:, :5], unilm=True, use_cache=True)
    chunk = model(ids[:, 5:9], segments[:, 5:9], past_key_values=prompt.past_key_values)
    torch.testing.assert_close(chunk.logits, full[:, 5:9], atol=1e-5, rtol=0)


@pytest.mark.parametrize("side", ["left", "right"])
@torch.no_grad()
def test_cache_with_padded_prompts_of_different_lengths(model, side):
    """Batched prompts of different lengths, attention_mask over cached + new tokens: each row gets
    the logits of its own unpadded forward. Left padding needs no position_ids (RoPE is
    relative); right padding continues each row from its own length via position_ids (B, L)."""
    torch.manual_seed(3)
    long, short = torch.randint(1, 128, (6,)), torch.randint(1, 128, (4,))
    new = torch.randint(1, 128, (2, 3))
    zeros = torch.zeros(2, dtype=torch.long)
    if side == "left":
        prompts = torch.stack([long, torch.cat([zeros, short])])
        pad = torch.tensor([[1] * 6, [0, 0] + [1] * 4])
        positions = None
    else:
        prompts = torch.stack([long, torch.cat([short, zeros])])
        pad = torch.tensor([[1] * 6, [1] * 4 + [0, 0]])
        positions = torch.tensor([[6, 7, 8], [4, 5, 6]])
    prompt = model(prompts, None, pad, unilm=True, use_cache=True)
    full_mask = torch.cat([pad, torch.ones(2, 3, dtype=torch.long)], dim=1)
    segments = torch.ones(2, 3, dtype=torch.long)
    out = model(
        new, segments, full_mask, past_key_values=prompt.past_key_values, position_ids=positions
    )
    for row, p in enumerate((long, short)):
        ids = torch.cat([p, new[row]])[None]
        seg = torch.tensor([[0] * len(p) + [1] * 3])
        expected = model(ids, seg, unilm=True).logits[0, len(p) :]
        torch.testing.assert_close(out.logits[row], expected, atol=1e-5, rtol=0)


def test_gradients_flow_through_pooler_lm_head_and_encoder(batch):
    torch.manual_seed(0)
    m = RoFormerSim(RoFormerSimConfig.preset("tiny"))
    ids, segments, mask = batch
    out = m(ids, segments, mask, unilm=True)
    (out.pooled.square().sum() + out.logits.logsumexp(-1).sum()).backward()
    for name in (
        "pooler.weight", "lm_head.dense.weight", "lm_head.norm.weight", "lm_head.decoder.bias",
        "embeddings.word.weight", "embeddings.token_type.weight", "layers.0.attn.qkv.weight",
        "layers.1.down.weight",
    ):
        grad = m.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert m.lm_head.decoder.weight is m.embeddings.word.weight


def test_dropout_is_active_in_training_only(batch):
    torch.manual_seed(0)
    m = RoFormerSim(RoFormerSimConfig.preset("tiny", dropout=0.3, attention_dropout=0.3))
    ids, segments, mask = batch
    a, b = m(ids, segments, mask).pooled, m(ids, segments, mask).pooled
    assert not torch.allclose(a, b)
    m.eval()
    torch.testing.assert_close(m(ids, segments, mask).pooled, m(ids, segments, mask).pooled)


def test_bf16_autocast_forward(model, batch):
    ids, segments, mask = batch
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, segments, mask, unilm=True)
    assert out.logits.dtype == torch.bfloat16
    ref = model(ids, segments, mask, unilm=True).last_hidden_state
    assert (out.last_hidden_state.float() - ref).abs().max() < 0.2


@torch.no_grad()
def test_all_padding_row_stays_finite_and_leaves_other_rows_alone(model, batch):
    ids, segments, mask = batch
    empty = mask.clone()
    empty[2] = 0
    out = model(ids, segments, empty, unilm=True)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.pooled).all()
    ref = model(ids[:2], segments[:2], mask[:2], unilm=True)
    torch.testing.assert_close(out.logits[:2], ref.logits)


def test_too_long_sequence_is_a_clear_error(model):
    with pytest.raises(ValueError, match="max_position"):
        model(torch.ones(1, 129, dtype=torch.long))
    with pytest.raises(ValueError, match="position 128 exceeds"):
        model(torch.ones(1, 1, dtype=torch.long), position_ids=torch.tensor([128]))


def test_embedding_projection_when_embedding_size_differs(tmp_path):
    torch.manual_seed(0)
    m = RoFormerSim(tiny(embedding_size=16)).eval()
    m.save_pretrained(tmp_path)
    hf = transformers.RoFormerForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(1, 128, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(m(ids).logits, hf(input_ids=ids).logits, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# weights I/O


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_save_load_round_trip_is_bit_exact(model, saved, batch, tmp_path):
    loaded = RoFormerSim.from_pretrained(saved).eval()
    assert loaded.config == model.config
    assert_same_weights(model, loaded)
    ids, segments, mask = batch
    with torch.no_grad():
        assert torch.equal(loaded(ids, segments, mask).logits, model(ids, segments, mask).logits)
    assert loaded.vocab_file is None
    overridden = RoFormerSim.from_pretrained(saved, dropout=0.2)
    assert overridden.config.dropout == 0.2


def test_saved_keys_are_hf_names(saved, model):
    from safetensors.torch import load_file

    keys = set(load_file(saved / "model.safetensors"))
    for key in (
        "roformer.embeddings.word_embeddings.weight",
        "roformer.embeddings.token_type_embeddings.weight",
        "roformer.embeddings.LayerNorm.weight",
        "roformer.encoder.layer.0.attention.self.query.weight",
        "roformer.encoder.layer.1.attention.self.value.bias",
        "roformer.encoder.layer.1.attention.output.LayerNorm.bias",
        "roformer.encoder.layer.1.intermediate.dense.weight",
        "roformer.encoder.layer.1.output.dense.weight",
        "roformer.pooler.dense.weight",
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.LayerNorm.bias",
    ):
        assert key in keys, key
    assert not any("embeddings_project" in k for k in keys)


def test_vocab_is_copied_and_remembered(model, tmp_path):
    vocab = tmp_path / "my_vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    model.save_pretrained(tmp_path / "a", vocab_file=vocab)
    loaded = RoFormerSim.from_pretrained(tmp_path / "a")
    assert loaded.vocab_file == tmp_path / "a" / "vocab.txt"
    loaded.save_pretrained(tmp_path / "b")
    assert (tmp_path / "b" / "vocab.txt").read_text(encoding="utf-8") == "[PAD]\n[UNK]\n"
    loaded.save_pretrained(tmp_path / "a")  # saving over its own folder keeps the vocab
    assert (tmp_path / "a" / "vocab.txt").read_text(encoding="utf-8") == "[PAD]\n[UNK]\n"
    with pytest.raises(FileNotFoundError, match="vocab_file"):
        model.save_pretrained(tmp_path / "c", vocab_file=tmp_path / "nope.txt")


def test_hf_key_mapping_round_trip(model):
    state = model.hf_state_dict()
    copy = RoFormerSim(model.config)
    assert copy.load_hf_state_dict(state) == []
    assert_same_weights(model, copy)
    assert torch.equal(
        torch.cat([state[f"roformer.encoder.layer.0.attention.self.{n}.weight"]
                   for n in ("query", "key", "value")]),
        model.layers[0].attn.qkv.weight.detach(),
    )


def published_layout(model, prefix=True):
    """A state dict laid out like the published PyTorch conversions (RoFormerForCausalLM with a
    pooler): tied decoder weights stored explicitly, sinusoidal table included."""
    state = dict(model.hf_state_dict())
    state["cls.predictions.decoder.weight"] = state["roformer.embeddings.word_embeddings.weight"]
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    if not prefix:
        state = {k.removeprefix("roformer."): v for k, v in state.items()}
    return state


@pytest.mark.parametrize("prefix", [True, False])
def test_loads_pytorch_model_bin_in_published_layout(model, saved, tmp_path, prefix):
    (tmp_path / "config.json").write_text((saved / "config.json").read_text())
    torch.save(published_layout(model, prefix), tmp_path / "pytorch_model.bin")
    assert_same_weights(model, RoFormerSim.from_pretrained(tmp_path))


def test_loads_a_transformers_causal_lm_checkpoint(saved, tmp_path, batch):
    hf = transformers.RoFormerForCausalLM.from_pretrained(saved).eval()
    hf.save_pretrained(tmp_path)  # no pooler: HF's RoFormer has none
    with pytest.raises(KeyError, match="roformer.pooler.dense.weight"):
        RoFormerSim.from_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="roformer.pooler.dense.bias"):
        m = RoFormerSim.from_pretrained(tmp_path, strict=False).eval()
    ids, segments, mask = batch
    with torch.no_grad():
        torch.testing.assert_close(
            m(ids, segments, mask).logits,
            hf(input_ids=ids, token_type_ids=segments, attention_mask=mask).logits,
            atol=1e-5, rtol=1e-5,
        )


def test_key_errors_list_missing_and_unexpected(model):
    state = published_layout(model)
    del state["roformer.encoder.layer.1.output.dense.bias"]
    state["classifier.weight"] = torch.zeros(2)
    with pytest.raises(KeyError) as err:
        RoFormerSim(model.config).load_hf_state_dict(state)
    assert "roformer.encoder.layer.1.output.dense.bias" in str(err.value)
    assert "classifier.weight" in str(err.value)
    with pytest.raises(KeyError, match="output.dense.bias"):  # encoder keys are never optional
        RoFormerSim(model.config).load_hf_state_dict(state, strict=False)
    state = published_layout(model)
    state["cls.predictions.decoder.weight"] = state["cls.predictions.decoder.weight"] + 1
    with pytest.raises(ValueError, match="ties them"):
        RoFormerSim(model.config).load_hf_state_dict(state)


def test_missing_files_name_the_folder(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="config.json") as err:
        RoFormerSim.from_pretrained(tmp_path)
    assert str(tmp_path) in str(err.value)
    (tmp_path / "config.json").write_text((saved / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="model.safetensors") as err:
        RoFormerSim.from_pretrained(tmp_path)
    assert str(tmp_path) in str(err.value)
