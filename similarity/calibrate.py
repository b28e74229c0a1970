"""Calibrate the Jaccard variants on labelled pairs: ROC-AUC and precision/recall per threshold.

Usage::

    python -m similarity.calibrate --pairs ../shared/data/sts/LCQMC.valid.data \\
        [--variants all] [--positive-min 1] [--out DIR]

Input: UTF-8 TSV lines ``text1<TAB>text2<TAB>label``; a pair is *similar* when
``label >= --positive-min`` (1 for the 0/1 files, e.g. 4 for STS-B's 0..5 scores).
For every variant it prints ROC-AUC (the probability that a random similar pair scores higher
than a random dissimilar one, ties counting one half) and, for thresholds 0.05, 0.10, ..., 0.95,
precision = similar admitted / admitted, recall = similar admitted / similar, and the number of
pairs admitted (``score >= threshold``). With ``--out`` it also writes ``calibration.tsv`` and
``calibration.png`` (precision and recall against threshold, one colour per variant).
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from similarity.jaccard import VARIANTS, score

THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))


@dataclass(frozen=True)
class Row:
    """Precision, recall and admitted count of one variant at one threshold."""

    variant: str
    threshold: float
    precision: float
    recall: float
    admitted: int


def read_pairs(path: Path, positive_min: float) -> list[tuple[str, str, bool]]:
    """Pairs of a UTF-8 ``text1\ttext2\tlabel`` file (``\r\n`` line ends fine); raises
    ``ValueError`` naming the file and line of one that is not UTF-8, lacks three fields or
    has a label that is not a finite number (``nan`` was taken as dissimilar)."""
    pairs = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{number}: invalid UTF-8 ({err.reason} at byte "
                                 f"{err.start + 1} of the line)") from None
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected 3 tab-separated fields")
            try:
                label = float(fields[2])
            except ValueError:
                label = math.nan
            if not math.isfinite(label):
                raise ValueError(f"{path}:{number}: label {fields[2]!r} is not a finite number")
            pairs.append((fields[0], fields[1], label >= positive_min))
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """ROC-AUC by the rank-sum (Mann–Whitney U) formula with average ranks for ties."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        raise ValueError("ROC-AUC needs both similar and dissimilar pairs")
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        average_rank = (start + end) / 2 + 1
        rank_sum += average_rank * sum(labels[k] for k in order[start : end + 1])
        start = end + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def threshold_table(variant: str, scores: Sequence[float], labels: Sequence[bool]) -> list[Row]:
    """Precision/recall/admitted of ``score >= t`` for every t in ``THRESHOLDS``."""
    positives = sum(labels)
    rows = []
    for threshold in THRESHOLDS:
        admitted = [label for value, label in zip(scores, labels) if value >= threshold]
        hits = sum(admitted)
        precision = hits / len(admitted) if admitted else float("nan")
        rows.append(Row(variant, threshold, precision, hits / positives, len(admitted)))
    return rows


def _plot(tables: dict[str, list[Row]], aucs: dict[str, float], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    for colour, (variant, rows) in zip(
        plt.rcParams["axes.prop_cycle"].by_key()["color"], tables.items()
    ):
        x = [row.threshold for row in rows]
        label = f"{variant} (AUC {aucs[variant]:.3f})"
        axis.plot(x, [row.precision for row in rows], "-", color=colour, label=f"{label} precision")
        axis.plot(x, [row.recall for row in rows], "--", color=colour, label=f"{label} recall")
    axis.set_xlabel("threshold (admit score >= threshold)")
    axis.set_ylabel("precision (solid) / recall (dashed)")
    axis.set_title(title)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the calibration; returns ROC-AUC per variant."""
    parser = argparse.ArgumentParser(
        prog="python -m similarity.calibrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pairs", type=Path, required=True, help="TSV text1<TAB>text2<TAB>label")
    parser.add_argument(
        "--variants",
        default="all",
        help=f"comma-separated subset of {','.join(VARIANTS)}, or 'all'",
    )
    parser.add_argument(
        "--positive-min",
        type=float,
        default=1.0,
        help="labels >= this count as similar (default 1)",
    )
    parser.add_argument("--out", type=Path, help="directory for calibration.tsv and .png")
    args = parser.parse_args(argv)
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)} or 'all'")
    if not args.pairs.is_file():
        parser.error(f"--pairs: {args.pairs} is not a file")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out: {args.out} is an existing file, not a folder")
    try:
        pairs = read_pairs(args.pairs, args.positive_min)
    except (OSError, ValueError) as err:
        parser.error(f"--pairs: {err}")
    labels = [label for _, _, label in pairs]
    if len(set(labels)) < 2:
        parser.error(f"--pairs: {args.pairs}: all {len(labels)} pairs are "
                     f"{'similar' if labels[0] else 'dissimilar'} at --positive-min "
                     f"{args.positive_min:g}; ROC-AUC needs both")
    print(f"{args.pairs}: {len(pairs)} pairs, {sum(labels)} similar")
    tables: dict[str, list[Row]] = {}
    aucs: dict[str, float] = {}
    for name in names:
        scores = [score(a, b, name) for a, b, _ in pairs]
        aucs[name] = roc_auc(scores, labels)
        tables[name] = threshold_table(name, scores, labels)
        print(f"\n{name}: ROC-AUC {aucs[name]:.4f}")
        print("threshold  precision  recall  admitted")
        for row in tables[name]:
            print(
                f"{row.threshold:9.2f}  {row.precision:9.3f}  {row.recall:6.3f}  {row.admitted:8d}"
            )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / "calibration.tsv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["variant", "roc_auc", "threshold", "precision", "recall", "admitted"])
            for name, rows in tables.items():
                for row in rows:
                    writer.writerow(
                        [
                            name,
                            f"{aucs[name]:.4f}",
                            row.threshold,
                            f"{row.precision:.4f}",
                            f"{row.recall:.4f}",
                            row.admitted,
                        ]
                    )
        _plot(tables, aucs, args.pairs.name, args.out / "calibration.png")
        print(f"\nwrote {args.out / 'calibration.tsv'} and {args.out / 'calibration.png'}")
    return aucs


if __name__ == "__main__":
    main()
