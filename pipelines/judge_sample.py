"""Draw a seeded sample of a pipeline's pairs as a TSV ready for judging by reading.

    python -m pipelines.judge_sample out/qa --n 100 [--min 0.3 --max 0.4] [--seed 0]
        [--exclude judged.tsv ...] --out sample.tsv

Reads every pair shard of a ``qa_pairs`` / ``doc_pairs`` / ``question_pairs`` output folder,
keeps the pairs with ``min <= score < max`` whose key (``similarity.calibrate.pair_key``) is
in none of the ``--exclude`` TSVs (pairs judged already), orders them by the seeded content
hash ``content_hash(seed, "judge", min_text, max_text)`` and writes the first ``n`` as
``text_a, text_b, score, scheme, label, reason`` with empty ``label`` and ``reason``, sorted by
score. The same folder, range, seed and exclusions give the same sample on any machine; a
larger ``n`` gives a superset. Fill the labels by reading (docs/judging.md), then run
``python -m similarity.calibrate --judged sample.tsv``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.hashing import content_hash
from pipelines.io import read_pairs
from similarity.calibrate import JudgedPair, pair_key, read_judged, write_judged


def draw_sample(
    pairs_dir: str,
    n: int,
    seed: int = 0,
    low: float = 0.0,
    high: float = float("inf"),
    exclude: Sequence[Path] = (),
) -> list[JudgedPair]:
    """The ``n`` pairs of ``pairs_dir`` with ``low <= score < high`` and the smallest seeded
    content hash, leaving out the keys of the ``exclude`` TSVs; sorted by score, then key."""
    judged = {row.key for path in exclude for row in read_judged(path, unlabelled=True)}
    table = read_pairs(pairs_dir).select(["text_a", "text_b", "score", "scheme"])
    candidates = []
    for row in table.to_pylist():
        key = pair_key(row["text_a"], row["text_b"])
        if low <= row["score"] < high and key not in judged:
            candidates.append((content_hash(seed, "judge", *key), key, row))
    candidates.sort()
    drawn = [
        JudgedPair(*key, round(float(row["score"]), 4), row["scheme"], "", "")
        for _, key, row in candidates[:n]
    ]
    return sorted(drawn, key=lambda pair: (pair.score, pair.key))


def main(argv: Sequence[str] | None = None) -> int:
    """Write the sample; returns 0, or 2 with a one-line error on a bad option or file."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.judge_sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("pairs_dir", help="a pair pipeline's output folder")
    parser.add_argument("--n", type=int, default=100, help="pairs to draw (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="content-hash seed (default 0)")
    parser.add_argument("--min", type=float, default=0.0, help="keep score >= this (default 0)")
    parser.add_argument("--max", type=float, default=float("inf"),
                        help="keep score < this (default: no bound)")
    parser.add_argument("--exclude", type=Path, nargs="*", default=[],
                        help="judged TSVs whose pairs are left out")
    parser.add_argument("--out", type=Path, required=True, help="TSV to write")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n: need at least 1, got {args.n}")
    if not args.min < args.max:
        parser.error(f"--min {args.min} must be below --max {args.max}")
    try:
        sample = draw_sample(args.pairs_dir, args.n, args.seed, args.min, args.max, args.exclude)
        if not sample:
            raise ValueError(f"{args.pairs_dir}: no pairs with {args.min} <= score < {args.max}")
        write_judged(args.out, sample)
    except (OSError, ValueError) as error:
        print(f"judge_sample: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(sample)} pairs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
