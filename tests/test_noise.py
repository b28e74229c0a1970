"""BART-style noise: units equal the plain tokenisation, rates on real LCQMC sentences (fixed
seeds, tolerances of 4+ standard deviations), determinism, special tokens untouched."""

import numpy as np
import pytest

from model.noise import BartNoise
from model.tokenizer import Tokenizer, is_special_token


@pytest.fixture(scope="module")
def tok(shared_data):
    return Tokenizer(shared_data / "vocab" / "roformer-sim-char" / "vocab.txt")


@pytest.fixture(scope="module")
def sentences(shared_data):
    lines = (shared_data / "sts" / "LCQMC.valid.data").read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(s for line in lines for s in line.split("\t")[:2]))[:3000]


def test_units_concatenate_to_the_plain_tokenisation(tok, sentences):
    noise = BartNoise(tok)
    kana = ["日本语このやろ是什么意思", "谁知道インモールド的日语意思？",
            "我用iPhone 12拍照[MASK]好"]
    for text in sentences[:800] + kana:
        units = noise.words(text)
        assert [i for ids, _ in units for i in ids] == tok.text_ids(text), text
    units = noise.words("日本语このやろ是什么意思")
    assert ([tok.unk_id], True) in units


def unit_outcomes(tok, noise, texts, rng):
    """Per maskable unit: 'mask' (all [MASK]), 'random' (changed otherwise) or 'same'."""
    outcomes = []
    for text in texts:
        units = noise.words(text)
        noised = noise.mask_words(text, rng)
        assert len(noised) == sum(len(ids) for ids, _ in units)
        pos = 0
        for ids, maskable in units:
            got = noised[pos: pos + len(ids)]
            pos += len(ids)
            if not maskable:
                assert got == ids
            elif got == [tok.mask_id] * len(ids):
                outcomes.append("mask")
            else:
                outcomes.append("same" if got == ids else "random")
    return outcomes


def test_word_rates_on_lcqmc(tok, sentences):
    noise = BartNoise(tok)
    outcomes = unit_outcomes(tok, noise, sentences, np.random.default_rng(7))
    n = len(outcomes)
    assert n > 15000
    masked, random = outcomes.count("mask") / n, outcomes.count("random") / n
    # expected: 0.15 × 0.8 = 0.12 masked, 0.15 × 0.1 = 0.015 random (sd 0.0026 and 0.001)
    assert abs(masked - 0.12) < 0.012
    assert abs(random - 0.015) < 0.005
    assert 5.0 < masked / random < 13.0


def test_row_rate_on_lcqmc(tok, sentences):
    noise = BartNoise(tok)
    rng = np.random.default_rng(11)
    changed = [noise(s, rng) != tok.text_ids(s) for s in sentences]
    # a noised row changes unless none of its m maskable units is masked or randomised
    units = [sum(maskable for _, maskable in noise.words(s)) for s in sentences]
    expected = 0.5 * np.mean([1 - (1 - 0.135) ** m for m in units])
    assert abs(np.mean(changed) - expected) < 0.04  # sd ≈ 0.009 over 3000 rows


def test_same_seed_same_output(tok, sentences):
    noise = BartNoise(tok)

    def run(seed):
        rng = np.random.default_rng(seed)
        return [noise(s, rng) for s in sentences[:300]]

    assert run(5) == run(5)
    assert run(5) != run(6)
    assert noise.mask_words(sentences[0], 3) == noise.mask_words(sentences[0], 3)


def test_special_tokens_never_noised_and_never_drawn(tok):
    text = "[MASK]微信和支付宝[UNK]哪个好[SEP]"
    everything_masked = BartNoise(tok, row_prob=1.0, word_prob=1.0, mask_prob=1.0, keep_prob=0.0)
    ids = everything_masked(text, np.random.default_rng(0))
    tokens = [tok.id_to_token(i) for i in ids]
    assert tokens[0] == "[MASK]" and tokens[-1] == "[SEP]" and "[UNK]" in tokens
    assert tokens.count("[MASK]") == len(ids) - 2
    all_random = BartNoise(tok, row_prob=1.0, word_prob=1.0, mask_prob=0.0, keep_prob=0.0)
    ids = all_random("微信和支付宝哪个好" * 20, np.random.default_rng(1))
    assert len(ids) == 180 and not any(is_special_token(tok.id_to_token(i)) for i in ids)


@pytest.mark.parametrize("kwargs", [{"row_prob": 1.5}, {"word_prob": -0.1},
                                    {"mask_prob": 0.8, "keep_prob": 0.3}])
def test_bad_probabilities(tok, kwargs):
    with pytest.raises(ValueError, match="prob"):
        BartNoise(tok, **kwargs)
