"""BART-style input noise of RoFormer-Sim: jieba whole-word masking of segment a.

RoFormer-Sim (kexue.fm/archives/8454; reference ``train/stage1.py``, ``masked_encode``) feeds
"a noisy sentence in, a similar sentence out". Per row, with probability ``row_prob`` (0.5), the
text of segment a is cut into words by jieba and each word is chosen independently with
probability ``word_prob`` (0.15); of the chosen words 80 % have every token replaced by
``[MASK]``, 10 % stay as they are and 10 % have every token replaced by a random token. Only the
text's own tokens change: ``[CLS]``/``[SEP]``, segment b and literal special tokens in the text
(``[MASK]`` typed by a user) are never chosen, and random tokens are drawn uniformly from the
ordinary (non-special) vocabulary. The reference draws from ids 1..V-1, which can insert
``[SEP]`` or ``[CLS]`` inside segment a; we exclude them.

Randomness comes only from the ``numpy.random.Generator`` (or integer seed) passed in: same
generator state, same output. jieba loads its dictionary (~1 s) when a ``BartNoise`` is built, so
DataLoader workers forked afterwards share it.
"""

from __future__ import annotations

import logging

import jieba
import numpy as np

from model.tokenizer import Tokenizer, is_special_token

jieba.setLogLevel(logging.WARNING)


class BartNoise:
    """``noise(text, rng) -> ids``: token ids of ``text`` (no ``[CLS]``/``[SEP]``), noised with
    probability ``row_prob`` by whole-word masking (see the module docstring)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        row_prob: float = 0.5,
        word_prob: float = 0.15,
        mask_prob: float = 0.8,
        keep_prob: float = 0.1,
    ) -> None:
        for name, value in (("row_prob", row_prob), ("word_prob", word_prob),
                            ("mask_prob", mask_prob), ("keep_prob", keep_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if mask_prob + keep_prob > 1.0:
            raise ValueError(f"mask_prob + keep_prob must be ≤ 1, got {mask_prob + keep_prob}")
        self.tokenizer = tokenizer
        self.row_prob = row_prob
        self.word_prob = word_prob
        self.mask_prob = mask_prob
        self.keep_prob = keep_prob
        jieba.initialize()
        self.ordinary_ids = np.array(
            [i for i, t in enumerate(tokenizer.tokens) if not is_special_token(t)], dtype=np.int64)

    def words(self, text: str) -> list[tuple[list[int], bool]]:
        """Token ids of each noise unit of ``text`` and whether it may be noised.

        A unit is a jieba word, widened to whole BERT words where a BERT word spans several
        jieba words (a kana run is one BERT word but several jieba words); a unit holding a
        literal special token may not be noised. The units' ids concatenated are exactly
        ``tokenizer.text_ids(text)``.
        """
        tok = self.tokenizer
        jieba_word = [0] * len(text)
        for j, (_, start, end) in enumerate(jieba.tokenize(text)):
            jieba_word[start:end] = [j] * (end - start)
        unit_of = list(range(len(text) + 1))
        units: list[tuple[list[int], bool]] = []
        last_unit = -1
        for tokens, start, end, special in tok.word_tokens(text):
            first, final = jieba_word[start], jieba_word[end - 1]
            unit = unit_of[first]
            unit_of[first: final + 1] = [unit] * (final + 1 - first)
            ids = tok.convert_tokens_to_ids(tokens)
            if unit == last_unit:
                units[-1][0].extend(ids)
                units[-1] = (units[-1][0], units[-1][1] and not special)
            else:
                units.append((ids, not special))
            last_unit = unit
        return units

    def mask_words(self, text: str, rng: np.random.Generator | int) -> list[int]:
        """Whole-word masking of ``text`` always applied (the reference's ``masked_encode``)."""
        rng = np.random.default_rng(rng)
        words = self.words(text)
        draws = rng.random(len(words))
        mask_below = self.word_prob * self.mask_prob
        keep_below = self.word_prob * (self.mask_prob + self.keep_prob)
        ids: list[int] = []
        for (word_ids, maskable), r in zip(words, draws, strict=True):
            if not maskable or r >= self.word_prob or mask_below <= r < keep_below:
                ids.extend(word_ids)
            elif r < mask_below:
                ids.extend([self.tokenizer.mask_id] * len(word_ids))
            else:
                picks = rng.integers(len(self.ordinary_ids), size=len(word_ids))
                ids.extend(self.ordinary_ids[picks].tolist())
        return ids

    def __call__(self, text: str, rng: np.random.Generator | int) -> list[int]:
        rng = np.random.default_rng(rng)
        if rng.random() < self.row_prob:
            return self.mask_words(text, rng)
        return self.tokenizer.text_ids(text)
