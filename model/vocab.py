"""Build a character vocabulary (``vocab.txt``) from pair Parquet shards.

    python -m model.vocab --data 'out/corpus/train-*.parquet' --size 12000 --out vocab.txt

Layout, as the shared BERT / RoFormer-Sim char vocab files: ``[PAD]``, ``[unused1]`` ..
``[unused99]``, ``[UNK] [CLS] [SEP] [MASK] <S> <T>`` (ids 0-105, so ``[UNK]`` = 100, ``[CLS]`` =
101, ``[SEP]`` = 102, ``[MASK]`` = 103), then tokens by descending count, ties in code-point
order. Counted tokens come from ``text_a`` and ``text_b`` after the tokenizer's basic step
(lower-casing and accent stripping, whitespace dropped): every CJK character and punctuation
mark, and for a Latin/digit word its first character plus ``##c`` for each later character, so
that WordPiece can always spell a word whose characters are in the vocabulary (a word it cannot
spell becomes a single ``[UNK]``). The RoFormer-Sim char model uses 12000 tokens.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from model.cli import check_output
from model.data import iter_shard_pairs, open_shard, resolve_shards
from model.tokenizer import BasicTokenizer

SPECIAL_TOKENS = (
    ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)]
    + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "<S>", "<T>"]
)


def count_tokens(
    data: str | Path | Sequence[str | Path], do_lower_case: bool = True, progress: bool = False
) -> Counter[str]:
    """Counts of the vocabulary candidates (see module docstring) in every shard of ``data``."""
    paths = resolve_shards(data)
    for path in paths:
        open_shard(path)
    basic = BasicTokenizer(do_lower_case)
    words: Counter[str] = Counter()
    rows = 0
    for path in tqdm(paths, desc="counting characters", unit="shard", disable=not progress):
        for text_a, text_b in iter_shard_pairs(path):
            words.update(word for word, _, _ in basic.words(text_a))
            words.update(word for word, _, _ in basic.words(text_b))
            rows += 1
    if not rows:
        raise ValueError(f"no rows in the {len(paths)} shard(s) of data {data!r}")
    counts: Counter[str] = Counter()
    for word, n in words.items():
        counts[word[0]] += n
        for char in word[1:]:
            counts["##" + char] += n
    return counts


def build_vocab(
    data: str | Path | Sequence[str | Path], size: int = 12000, do_lower_case: bool = True,
    progress: bool = False,
) -> list[str]:
    """Special tokens, then the ``size - 106`` most frequent tokens of ``data`` (fewer when the
    data has fewer distinct tokens)."""
    if size <= len(SPECIAL_TOKENS):
        raise ValueError(f"size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {size}")
    counts = count_tokens(data, do_lower_case, progress)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return SPECIAL_TOKENS + [token for token, _ in ranked[: size - len(SPECIAL_TOKENS)]]


def write_vocab(tokens: Sequence[str], path: str | Path) -> None:
    """One token per line, UTF-8, trailing newline."""
    Path(path).write_text("".join(t + "\n" for t in tokens), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model.vocab",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, nargs="+",
                        help="pair shards: glob(s), a build_corpus folder or its _manifest.json")
    parser.add_argument("--size", type=int, default=12000, help="tokens in all, specials included")
    parser.add_argument("--out", type=Path, default=Path("vocab.txt"))
    parser.add_argument("--cased", action="store_true", help="keep case and accents")
    args = parser.parse_args(argv)
    try:
        check_output(args.out, "--out")
        tokens = build_vocab(args.data, args.size, not args.cased, progress=True)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    write_vocab(tokens, args.out)
    note = "" if len(tokens) == args.size else f" (the data has only {len(tokens)} tokens)"
    print(f"wrote {len(tokens)} tokens to {args.out}{note}")


if __name__ == "__main__":
    main()
