"""BERT-style character tokenizer over a ``vocab.txt``, equal to ``transformers.BertTokenizer``.

Pipeline per text (the order of Google BERT / HF ``BertNormalizer`` + ``BertPreTokenizer``):

1. literal special tokens (``[CLS] [SEP] [PAD] [UNK] [MASK]``, case-sensitive) are split out whole;
2. NUL, U+FFFD and control characters (Unicode category C*, except tab/CR/LF) are dropped,
   whitespace is a word boundary;
3. every CJK ideograph is a word of its own (so Chinese is one token per character);
4. with ``do_lower_case`` characters are lower-cased and accents stripped (NFD, marks Mn removed);
5. punctuation (ASCII symbols and Unicode P*) is a word of its own;
6. each remaining word is split by greedy longest-match-first WordPiece (``##`` continuation);
   a word of more than 100 characters, or one WordPiece cannot cover, becomes ``[UNK]``.

With ``space_token="[unused1]"`` every whitespace character becomes that token instead of being
dropped, so Chinese text keeps its length (one token per character), as in Su Jianlin's
"当Bert遇上Keras" char tokenizer. Truncation follows bert4keras: the longer segment loses its
last token first (segment a on ties). Torch-free: batches come back as ``numpy.int64`` arrays.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.cli import text_lines

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_WORD_CHARS = 100

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
# Kinds of characters after normalisation.
_DROP, _SPACE, _ALONE, _WORD = 0, 1, 2, 3


def is_cjk(char: str) -> bool:
    """True for a CJK ideograph in the ranges BERT splits one per token."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_control(char: str) -> bool:
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _classify(char: str, do_lower_case: bool) -> list[tuple[int, str]]:
    """The normalised pieces of one input character, each with its kind."""
    if char in "\x00\ufffd" or _is_control(char):
        return [(_DROP, "")]
    if char.isspace() or unicodedata.category(char) == "Zs":
        return [(_SPACE, " ")]
    if is_cjk(char):
        return [(_ALONE, char)]
    text = char
    if do_lower_case:
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()
    pieces = []
    for c in text:
        if c.isspace():
            pieces.append((_SPACE, " "))
        elif _is_punctuation(c):
            pieces.append((_ALONE, c))
        else:
            pieces.append((_WORD, c))
    return pieces


def load_vocab(vocab_file: str | Path) -> list[str]:
    """Tokens of a ``vocab.txt``, one per line, in id order (``model.cli.text_lines``: invalid
    UTF-8 is a ``ValueError`` naming file and line)."""
    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(f"vocab_file {path} does not exist")
    tokens = text_lines(path)
    if not tokens:
        raise ValueError(f"vocab_file {path} is empty")
    return tokens


class BasicTokenizer:
    """Steps 2-5 of the module docstring: text → normalised words (no vocabulary needed)."""

    def __init__(self, do_lower_case: bool = True, space_token: str | None = None) -> None:
        self.do_lower_case = do_lower_case
        self.space_token = space_token
        self._char_cache: dict[str, list[tuple[int, str]]] = {}

    def words(self, text: str) -> list[tuple[str, int, int]]:
        """Basic tokenisation: normalised words (CJK characters and punctuation one per word),
        each with the span ``start:end`` of the characters of ``text`` it came from."""
        words: list[tuple[str, int, int]] = []
        current: list[str] = []
        start = last = 0
        cache = self._char_cache
        for index, char in enumerate(text):
            pieces = cache.get(char)
            if pieces is None:
                pieces = cache[char] = _classify(char, self.do_lower_case)
            for kind, piece in pieces:
                if kind == _WORD:
                    if not current:
                        start = index
                    current.append(piece)
                    last = index
                    continue
                if kind == _DROP:
                    continue
                if current:
                    words.append(("".join(current), start, last + 1))
                    current = []
                if kind == _ALONE:
                    words.append((piece, index, index + 1))
                elif self.space_token is not None:
                    words.append((self.space_token, index, index + 1))
        if current:
            words.append(("".join(current), start, last + 1))
        return words


class Tokenizer:
    """BERT char tokenizer; ``encode`` gives ``[CLS] a [SEP] b [SEP]`` ids and segment ids."""

    def __init__(
        self,
        vocab_file: str | Path,
        do_lower_case: bool = True,
        space_token: str | None = None,
    ) -> None:
        self.vocab_file = Path(vocab_file)
        self.tokens = load_vocab(vocab_file)
        self.vocab = {token: i for i, token in enumerate(self.tokens)}
        self.do_lower_case = do_lower_case
        missing = [t for t in SPECIAL_TOKENS if t not in self.vocab]
        if missing:
            raise ValueError(f"vocab_file {vocab_file} lacks special tokens {missing}")
        if space_token is not None and space_token not in self.vocab:
            raise ValueError(f"space_token {space_token!r} is not in vocab_file {vocab_file}")
        self.space_token = space_token
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.vocab[t] for t in SPECIAL_TOKENS
        )
        self.special_ids = frozenset(self.vocab[t] for t in SPECIAL_TOKENS)
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")
        self.basic = BasicTokenizer(do_lower_case, space_token)
        self._word_cache: dict[str, list[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        return self.tokens[token_id]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def _wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first split of one word; ``[UNK]`` when it cannot be covered."""
        pieces = self._word_cache.get(word)
        if pieces is not None:
            return pieces
        if word in self.vocab:
            pieces = [word]
        elif len(word) > MAX_WORD_CHARS:
            pieces = ["[UNK]"]
        else:
            pieces = []
            start = 0
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        break
                    end -= 1
                if end == start:
                    pieces = ["[UNK]"]
                    break
                pieces.append(piece)
                start = end
        if len(self._word_cache) < 1_000_000:
            self._word_cache[word] = pieces
        return pieces

    def split_special_tokens(self, text: str) -> list[str]:
        """``text`` cut around literal special tokens: odd items are the special tokens."""
        return self._special_re.split(text)

    def word_tokens(self, text: str) -> list[tuple[list[str], int, int, bool]]:
        """Tokens of each basic word of ``text`` with its character span ``start:end`` and
        whether it is a literal special token."""
        out = []
        offset = 0
        for i, part in enumerate(self.split_special_tokens(text)):
            if i % 2:
                out.append(([part], offset, offset + len(part), True))
            else:
                for word, start, end in self.basic.words(part):
                    tokens = [word] if word == self.space_token else self._wordpiece(word)
                    out.append((tokens, offset + start, offset + end, False))
            offset += len(part)
        return out

    def tokenize(self, text: str) -> list[str]:
        """Tokens of ``text`` without ``[CLS]``/``[SEP]``."""
        return [token for tokens, *_ in self.word_tokens(text) for token in tokens]

    def text_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``[CLS]``/``[SEP]``."""
        return self.convert_tokens_to_ids(self.tokenize(text))

    def build_inputs(
        self, ids_a: Sequence[int], ids_b: Sequence[int] | None = None, maxlen: int | None = 64
    ) -> tuple[list[int], list[int]]:
        """``[CLS] a [SEP] (b [SEP])`` and segment ids (0 for a, 1 for b), at most ``maxlen`` ids.

        Truncation as bert4keras ``truncate_sequences``: while too long, drop the last token of
        the longer segment (of a on ties).
        """
        len_a, len_b = len(ids_a), 0 if ids_b is None else len(ids_b)
        if maxlen is not None:
            overhead = 2 if ids_b is None else 3
            if maxlen < overhead:
                raise ValueError(f"maxlen must be at least {overhead}, got {maxlen}")
            len_a, len_b = truncated_lengths(len_a, len_b, maxlen - overhead)
        ids = [self.cls_id, *ids_a[:len_a], self.sep_id]
        segments = [0] * len(ids)
        if ids_b is not None:
            ids += [*ids_b[:len_b], self.sep_id]
            segments += [1] * (len_b + 1)
        return ids, segments

    def encode(
        self, text_a: str, text_b: str | None = None, maxlen: int | None = 64
    ) -> tuple[list[int], list[int]]:
        """Ids and segment ids of ``[CLS] a [SEP] (b [SEP])``, truncated to ``maxlen``."""
        ids_b = None if text_b is None else self.text_ids(text_b)
        return self.build_inputs(self.text_ids(text_a), ids_b, maxlen)

    def pad(
        self, ids: Sequence[Sequence[int]], segments: Sequence[Sequence[int]]
    ) -> dict[str, np.ndarray]:
        """Right-pad rows to the longest: ``input_ids``, ``token_type_ids``, ``attention_mask``,
        each ``int64`` of shape (B, L); padding has id ``pad_id``, segment 0 and mask 0."""
        width = max((len(row) for row in ids), default=0)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        token_type_ids = np.zeros((len(ids), width), dtype=np.int64)
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, (row, seg) in enumerate(zip(ids, segments, strict=True)):
            input_ids[i, : len(row)] = row
            token_type_ids[i, : len(seg)] = seg
            attention_mask[i, : len(row)] = 1
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": attention_mask,
        }

    def encode_batch(
        self,
        texts_a: Sequence[str],
        texts_b: Sequence[str] | None = None,
        maxlen: int | None = 64,
    ) -> dict[str, np.ndarray]:
        """``encode`` every row (pairs when ``texts_b`` is given), then ``pad``."""
        if texts_b is not None and len(texts_b) != len(texts_a):
            raise ValueError(f"texts_a has {len(texts_a)} rows but texts_b has {len(texts_b)}")
        rows = [
            self.encode(a, None if texts_b is None else texts_b[i], maxlen)
            for i, a in enumerate(texts_a)
        ]
        return self.pad([r[0] for r in rows], [r[1] for r in rows])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``: ``[CLS] [SEP] [PAD]`` and ``[unused*]`` dropped (the space token
        becomes a space), ``##`` pieces merged, CJK and punctuation joined without spaces, other
        words separated by one space."""
        text = ""
        for token_id in ids:
            token = self.tokens[int(token_id)]
            if token == self.space_token:
                text += " "
                continue
            if token in ("[CLS]", "[SEP]", "[PAD]") or token.startswith("[unused"):
                continue
            if token.startswith("##"):
                text += token[2:]
            elif text and _is_wordlike(text[-1]) and _is_wordlike(token[0]):
                text += " " + token
            else:
                text += token
        return text


def is_special_token(token: str) -> bool:
    """True for bracketed control tokens (``[CLS]``, ``[unused7]``, ...) and ``<S>``/``<T>``."""
    return token in ("<S>", "<T>") or (len(token) > 2 and token[0] == "[" and token[-1] == "]")


def _is_wordlike(char: str) -> bool:
    return not (char.isspace() or is_cjk(char) or _is_punctuation(char))


def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths after dropping tokens from the longer side first (a on ties) to fit ``budget``."""
    excess = len_a + len_b - budget
    if excess <= 0:
        return len_a, len_b
    gap = min(excess, abs(len_a - len_b))
    if len_a >= len_b:
        len_a -= gap
    else:
        len_b -= gap
    rest = excess - gap
    return len_a - (rest + 1) // 2, len_b - rest // 2
