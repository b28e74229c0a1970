"""Sentence encoding: every pooling against a manual computation on unpadded single rows."""

import numpy as np
import pytest
import torch

from model.encode import POOLINGS, Encoder, encode, load_checkpoint, run

TEXTS = ["广州和深圳哪个好？", "你好", "人和畜生的区别是什么？我想知道", "Hello 世界 2024"]

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


@torch.no_grad()
def _manual(model, tokenizer, text, pooling):
    """One sentence, no padding, pooled by hand from the per-layer hidden states."""
    ids = torch.tensor([tokenizer.encode(text, maxlen=64)[0]])
    out = model(ids, output_hidden_states=True)
    first, last = out.hidden_states[1][0], out.hidden_states[-1][0]  # (T, H)
    return {
        "pooler": out.pooled[0],
        "cls": last[0],
        "first-last-avg": ((first + last) / 2).mean(dim=0),
        "last-avg": last.mean(dim=0),
    }[pooling].numpy()


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_matches_manual_computation_with_padding_excluded(loaded, pooling):
    model, tokenizer = loaded
    got = encode(model, tokenizer, TEXTS, batch_size=3, pooling=pooling, normalize=False)
    assert got.shape == (len(TEXTS), model.config.hidden_size) and got.dtype == np.float32
    expected = np.stack([_manual(model, tokenizer, t, pooling) for t in TEXTS])
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_normalize_gives_unit_vectors_in_input_order(loaded):
    model, tokenizer = loaded
    raw = encode(model, tokenizer, TEXTS, pooling="last-avg", normalize=False)
    unit = encode(model, tokenizer, TEXTS, pooling="last-avg", batch_size=1)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)


def test_long_text_is_truncated_to_maxlen(loaded):
    model, tokenizer = loaded
    long = "长" * 500
    np.testing.assert_allclose(encode(model, tokenizer, [long], maxlen=16),
                               encode(model, tokenizer, ["长" * 14], maxlen=16), atol=1e-6)
    with pytest.raises(ValueError, match="max_position"):
        encode(model, tokenizer, [long], maxlen=400)


@pytest.mark.parametrize(("texts", "error", "message"), [
    (["好", ""], ValueError, r"texts\[1\] is empty"),
    (["好", "  "], ValueError, r"texts\[1\] is empty"),
    ([None], TypeError, r"texts\[0\] is NoneType"),
])
def test_bad_texts_are_named(loaded, texts, error, message):
    with pytest.raises(error, match=message):
        encode(*loaded, texts)


def test_bad_pooling(loaded):
    with pytest.raises(ValueError, match="pooling must be one of"):
        encode(*loaded, ["好"], pooling="max")


def test_missing_checkpoint_files_are_listed(tiny_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_checkpoint(tmp_path / "absent")
    (tmp_path / "config.json").write_bytes((tiny_checkpoint / "config.json").read_bytes())
    with pytest.raises(FileNotFoundError, match="lacks vocab.txt, model.safetensors or pytorch"):
        load_checkpoint(tmp_path)


def test_encoder_object_equals_the_function(tiny_checkpoint, loaded):
    encoder = Encoder.from_pretrained(tiny_checkpoint)
    np.testing.assert_array_equal(encoder.encode(TEXTS), encode(*loaded, TEXTS))
    got = encoder.encode(TEXTS, batch_size=2, pooling="first-last-avg", normalize=False, maxlen=8)
    expected = encode(*loaded, TEXTS, batch_size=2, pooling="first-last-avg", normalize=False,
                      maxlen=8)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 32)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"texts\[0\] is empty"):
        encoder.encode([""])


def test_encoder_names_a_bad_checkpoint(tiny_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="absent is not a directory"):
        Encoder.from_pretrained(tmp_path / "absent")
    (tmp_path / "vocab.txt").write_bytes((tiny_checkpoint / "vocab.txt").read_bytes())
    with pytest.raises(FileNotFoundError, match="lacks config.json, model.safetensors or"):
        Encoder.from_pretrained(tmp_path)


def test_cli_writes_vectors(tiny_checkpoint, loaded, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    run(["--checkpoint", str(tiny_checkpoint), "--input", str(source),
         "--out", str(tmp_path / "v.npy"), "--pooling", "cls"])
    vectors = np.load(tmp_path / "v.npy")
    np.testing.assert_allclose(vectors, encode(*loaded, TEXTS, pooling="cls"), atol=1e-6)
    assert "wrote 4 vectors of dimension 32 (cls)" in capsys.readouterr().err


def test_cli_rejects_blank_lines(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("好\n\n坏\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"in\.txt:2: empty line"):
        run(["--checkpoint", str(tiny_checkpoint), "--input", str(source),
             "--out", str(tmp_path / "v.npy")])
