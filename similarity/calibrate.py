"""Calibrate thresholds on labelled pairs: STS files (``--pairs``) or judged samples (``--judged``).

Usage::

    python -m similarity.calibrate --pairs ../shared/data/sts/LCQMC.valid.data \\
        [--variants all] [--positive-min 1] [--out DIR]
    python -m similarity.calibrate --judged benchmarks/judged/qa-*.tsv [--scheme qa] \\
        [--width 0.05] [--target 0.8] [--max-near-copy 1] [--max-junk 1] [--min-pairs 10] \\
        [--out DIR]

``--pairs`` input: UTF-8 TSV lines ``text1<TAB>text2<TAB>label``; a pair is *similar* when
``label >= --positive-min`` (1 for the 0/1 files, e.g. 4 for STS-B's 0..5 scores).
For every variant it prints ROC-AUC (the probability that a random similar pair scores higher
than a random dissimilar one, ties counting one half) and, for thresholds 0.05, 0.10, ..., 0.95,
precision = similar admitted / admitted, recall = similar admitted / similar, and the number of
pairs admitted (``score >= threshold``). With ``--out`` it also writes ``calibration.tsv`` and
``calibration.png`` (precision and recall against threshold, one colour per variant).

``--judged`` input: judged TSVs (``JUDGED_COLUMNS``; labels P/R/N/D/J of docs/judging.md),
pipeline pairs labelled by reading. Per scheme it prints, for every score bucket
``[k·width, (k+1)·width)``, the count and share of each label and the P+R precision
(P+R pairs / judged pairs); then, over every band ``[low, high)`` whose edges are bucket edges,
the band with the most P+R pairs among those with precision >= ``--target``, D share <=
``--max-near-copy``, J share <= ``--max-junk`` and at least ``--min-pairs`` judged pairs (ties:
higher precision, then the narrower band), and the ten runners-up; when no band meets the
goal, the most precise band with at least ``--min-pairs`` pairs instead. Counts are of *judged*
pairs: files that sample score ranges at different rates weigh those ranges unequally, so judge
each range at a similar rate (or read the per-bucket precision, which does not depend on it).
With ``--out`` it writes ``judged-<scheme>-buckets.tsv``, ``judged-<scheme>-bands.tsv`` (every
band) and ``judged-<scheme>.png`` (label shares per bucket stacked, precision line, best band
shaded).
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from similarity.jaccard import VARIANTS, score

THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))
LABELS = ("P", "R", "N", "D", "J")
"""Judged labels (docs/judging.md): paraphrase, related, not similar, near-copy, junk."""
SIMILAR_LABELS = frozenset("PR")
JUDGED_COLUMNS = ("text_a", "text_b", "score", "scheme", "label", "reason")


@dataclass(frozen=True)
class JudgedPair:
    """One row of a judged TSV; ``label`` is ``""`` in a sample not yet judged."""

    text_a: str
    text_b: str
    score: float
    scheme: str
    label: str
    reason: str

    @property
    def key(self) -> tuple[str, str]:
        """The pair's identity, whatever the order of its texts (see ``pair_key``)."""
        return pair_key(self.text_a, self.text_b)


def pair_key(text_a: str, text_b: str) -> tuple[str, str]:
    """``(min, max)`` of the two exact texts: the join key of judged and emitted pairs."""
    return (text_a, text_b) if text_a <= text_b else (text_b, text_a)


def read_judged(path: Path, unlabelled: bool = False) -> list[JudgedPair]:
    """Rows of a judged TSV (header ``JUDGED_COLUMNS``, tab-separated, no quoting).

    Raises ``ValueError`` naming the file and line of a bad row: a wrong field count, a score
    that is not a number, or a label outside ``LABELS`` (an empty label is allowed only with
    ``unlabelled=True``, for samples still being judged).
    """
    allowed = set(LABELS) | ({""} if unlabelled else set())
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
        if tuple(header) != JUDGED_COLUMNS:
            raise ValueError(f"{path}:1: header must be {'<TAB>'.join(JUDGED_COLUMNS)}")
        for number, line in enumerate(handle, 2):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(JUDGED_COLUMNS):
                raise ValueError(
                    f"{path}:{number}: expected {len(JUDGED_COLUMNS)} tab-separated fields, "
                    f"got {len(fields)}"
                )
            text_a, text_b, value, scheme, label, reason = fields
            try:
                pair_score = float(value)
            except ValueError:
                raise ValueError(f"{path}:{number}: score {value!r} is not a number") from None
            if label not in allowed:
                raise ValueError(f"{path}:{number}: label {label!r} is not one of {LABELS}")
            rows.append(JudgedPair(text_a, text_b, pair_score, scheme, label, reason))
    return rows


def write_judged(path: Path, rows: Sequence[JudgedPair]) -> None:
    """Write ``rows`` as a judged TSV; raises ``ValueError`` if a field holds a tab or newline."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(JUDGED_COLUMNS) + "\n")
        for row in rows:
            fields = [row.text_a, row.text_b, f"{row.score:.4f}", row.scheme, row.label,
                      row.reason]
            if any(char in field for field in fields for char in "\t\r\n"):
                raise ValueError(f"{path}: a field of pair {row.key} holds a tab or newline")
            handle.write("\t".join(fields) + "\n")


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


@dataclass(frozen=True)
class LabelCounts:
    """Judged labels of the pairs with ``low <= score < high`` (a bucket or a band)."""

    low: float
    high: float
    counts: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def similar(self) -> int:
        """P + R pairs."""
        return sum(self.counts[label] for label in SIMILAR_LABELS)

    @property
    def precision(self) -> float:
        """P+R pairs / judged pairs (NaN when none are judged)."""
        return self.similar / self.total if self.total else float("nan")

    def share(self, label: str) -> float:
        """Share of ``label`` among the judged pairs (NaN when none are judged)."""
        return self.counts[label] / self.total if self.total else float("nan")


@dataclass(frozen=True)
class BandGoal:
    """What a band must reach to be a candidate: P+R precision, D and J shares, support."""

    target: float = 0.8
    max_near_copy: float = 1.0
    max_junk: float = 1.0
    min_pairs: int = 10

    def met_by(self, band: LabelCounts) -> bool:
        return (
            band.total >= max(self.min_pairs, 1)
            and band.precision >= self.target
            and band.share("D") <= self.max_near_copy
            and band.share("J") <= self.max_junk
        )


def _edge(k: int, width: float) -> float:
    return round(k * width, 6)


def bucket_counts(pairs: Sequence[JudgedPair], width: float) -> list[LabelCounts]:
    """Label counts per bucket ``[k·width, (k+1)·width)``, every bucket from the lowest to the
    highest occupied one (empty ones included, so that bands are unions of adjacent buckets)."""
    if not pairs:
        raise ValueError("no judged pairs")
    index = [math.floor(pair.score / width + 1e-9) for pair in pairs]
    buckets = {k: Counter() for k in range(min(index), max(index) + 1)}
    for k, pair in zip(index, pairs):
        buckets[k][pair.label] += 1
    return [LabelCounts(_edge(k, width), _edge(k + 1, width), buckets[k]) for k in sorted(buckets)]


def band_counts(buckets: Sequence[LabelCounts]) -> list[LabelCounts]:
    """Every band ``[buckets[i].low, buckets[j].high)``, i <= j, with its summed label counts."""
    bands = []
    for i, first in enumerate(buckets):
        counts = Counter()
        for last in buckets[i:]:
            counts = counts + last.counts
            bands.append(LabelCounts(first.low, last.high, Counter(counts)))
    return bands


def best_bands(bands: Sequence[LabelCounts], goal: BandGoal) -> list[LabelCounts]:
    """The bands that meet ``goal``, best first: most P+R pairs, then higher precision, then
    narrower."""
    candidates = [band for band in bands if goal.met_by(band)]
    return sorted(
        candidates, key=lambda band: (-band.similar, -band.precision, band.high - band.low)
    )


def _label_row(counts: LabelCounts) -> list[str]:
    return (
        [f"{counts.low:.2f}", f"{counts.high:.2f}", str(counts.total)]
        + [str(counts.counts[label]) for label in LABELS]
        + [f"{counts.share(label):.3f}" for label in LABELS]
        + [str(counts.similar), f"{counts.precision:.3f}"]
    )


_LABEL_HEADER = (
    ["low", "high", "pairs"] + list(LABELS) + [f"{label}_share" for label in LABELS]
    + ["p_plus_r", "precision"]
)


def _print_table(rows: Sequence[LabelCounts]) -> None:
    print(
        "  low  high  pairs" + "".join(f"{label:>5}" for label in LABELS)
        + "".join(f"{label + '%':>6}" for label in LABELS) + "   P+R  precision"
    )
    for row in rows:
        print(
            f"{row.low:5.2f} {row.high:5.2f} {row.total:6d}"
            + "".join(f"{row.counts[label]:5d}" for label in LABELS)
            + "".join(f"{100 * row.share(label):6.0f}" for label in LABELS)
            + f" {row.similar:5d}  {row.precision:9.3f}"
        )


def _write_tsv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


LABEL_COLOURS = {"P": "#1a9850", "R": "#91cf60", "N": "#bdbdbd", "D": "#fc8d59", "J": "#d73027"}


def _plot_judged(
    buckets: Sequence[LabelCounts], best: LabelCounts | None, goal: BandGoal, title: str,
    path: Path,
) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(10, 5))
    width = buckets[0].high - buckets[0].low
    x = [bucket.low + width / 2 for bucket in buckets]
    bottom = [0.0] * len(buckets)
    for label in LABELS:
        shares = [bucket.share(label) if bucket.total else 0.0 for bucket in buckets]
        axis.bar(x, shares, width * 0.9, bottom=bottom, color=LABEL_COLOURS[label], label=label)
        bottom = [b + s for b, s in zip(bottom, shares)]
    axis.plot(x, [bucket.precision for bucket in buckets], "o-", color="black",
              label="P+R precision")
    for centre, bucket in zip(x, buckets):
        axis.annotate(str(bucket.total), (centre, 1.01), ha="center", fontsize=7)
    axis.axhline(goal.target, color="black", linestyle="--", linewidth=0.8,
                 label=f"target {goal.target:g}")
    if best is not None:
        axis.axvspan(best.low, best.high, color="blue", alpha=0.08,
                     label=f"best band [{best.low:.2f}, {best.high:.2f})")
    axis.set_xlabel("score (bucket; judged pairs above each bar)")
    axis.set_ylabel("label share / P+R precision")
    axis.set_ylim(0, 1.08)
    axis.set_title(title)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def calibrate_judged(
    pairs: Sequence[JudgedPair], width: float, goal: BandGoal, out: Path | None, name: str
) -> LabelCounts | None:
    """Print the bucket table and the best bands of one scheme's judged pairs; returns the
    best band (None when no band meets ``goal``)."""
    buckets = bucket_counts(pairs, width)
    bands = band_counts(buckets)
    ranked = best_bands(bands, goal)
    best = ranked[0] if ranked else None
    total = LabelCounts(buckets[0].low, buckets[-1].high, sum((b.counts for b in buckets),
                                                               Counter()))
    print(f"\n{name}: {total.total} judged pairs, P+R precision {total.precision:.3f}")
    _print_table(buckets)
    print(
        f"bands [low, high) with precision >= {goal.target:g}, D <= {goal.max_near_copy:g}, "
        f"J <= {goal.max_junk:g}, >= {goal.min_pairs} pairs, most P+R first:"
    )
    if ranked:
        _print_table(ranked[:11])
        print(
            f"best band: [{best.low:.2f}, {best.high:.2f}): {best.similar} P+R of {best.total} "
            f"judged, precision {best.precision:.3f}, D {best.share('D'):.3f}, "
            f"J {best.share('J'):.3f}"
        )
    else:
        supported = [band for band in bands if band.total >= max(goal.min_pairs, 1)]
        print("  none")
        if supported:
            top = max(supported, key=lambda band: (band.precision, band.similar))
            print(
                f"most precise band with >= {goal.min_pairs} pairs: [{top.low:.2f}, "
                f"{top.high:.2f}): {top.similar} P+R of {top.total}, precision "
                f"{top.precision:.3f}"
            )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _write_tsv(out / f"judged-{name}-buckets.tsv", _LABEL_HEADER,
                   [_label_row(bucket) for bucket in buckets])
        _write_tsv(out / f"judged-{name}-bands.tsv", _LABEL_HEADER + ["meets_goal"],
                   [_label_row(band) + [int(goal.met_by(band))] for band in bands])
        _plot_judged(buckets, best, goal, f"judged {name} pairs", out / f"judged-{name}.png")
        print(f"wrote {out}/judged-{name}-buckets.tsv, -bands.tsv and judged-{name}.png")
    return best


def _plot(tables: dict[str, list[Row]], aucs: dict[str, float], title: str, path: Path) -> None:
    plt = _pyplot()

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


def _run_sts(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, float]:
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
        _write_tsv(
            args.out / "calibration.tsv",
            ["variant", "roc_auc", "threshold", "precision", "recall", "admitted"],
            [
                [name, f"{aucs[name]:.4f}", row.threshold, f"{row.precision:.4f}",
                 f"{row.recall:.4f}", row.admitted]
                for name, rows in tables.items()
                for row in rows
            ],
        )
        _plot(tables, aucs, args.pairs.name, args.out / "calibration.png")
        print(f"\nwrote {args.out / 'calibration.tsv'} and {args.out / 'calibration.png'}")
    return aucs


def _run_judged(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> dict[str, LabelCounts | None]:
    if not args.width > 0:
        parser.error(f"--width: need > 0, got {args.width}")
    missing = [str(path) for path in args.judged if not path.is_file()]
    if missing:
        parser.error(f"--judged: not a file: {', '.join(missing)}")
    goal = BandGoal(args.target, args.max_near_copy, args.max_junk, args.min_pairs)
    by_scheme: dict[str, dict[tuple[str, str], JudgedPair]] = {}
    for path in args.judged:
        for pair in read_judged(path):
            judged = by_scheme.setdefault(pair.scheme, {})
            if pair.key in judged and judged[pair.key].label != pair.label:
                raise ValueError(
                    f"{path}: pair {pair.key} judged {judged[pair.key].label} elsewhere and "
                    f"{pair.label} here"
                )
            judged[pair.key] = pair
    schemes = [args.scheme] if args.scheme else sorted(by_scheme)
    if args.scheme and args.scheme not in by_scheme:
        parser.error(f"--scheme: no {args.scheme!r} pairs in the files (found {sorted(by_scheme)})")
    return {
        name: calibrate_judged(list(by_scheme[name].values()), args.width, goal, args.out, name)
        for name in schemes
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the calibration; returns ROC-AUC per variant (``--pairs``) or the best band per
    scheme (``--judged``; None where no band meets the goal)."""
    parser = argparse.ArgumentParser(
        prog="python -m similarity.calibrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", type=Path, help="STS TSV text1<TAB>text2<TAB>label")
    source.add_argument("--judged", type=Path, nargs="+",
                        help="judged TSVs (text_a, text_b, score, scheme, label, reason)")
    parser.add_argument(
        "--variants",
        default="all",
        help=f"--pairs: comma-separated subset of {','.join(VARIANTS)}, or 'all'",
    )
    parser.add_argument(
        "--positive-min",
        type=float,
        default=1.0,
        help="--pairs: labels >= this count as similar (default 1)",
    )
    parser.add_argument("--scheme", help="--judged: only this scheme (default: each in turn)")
    parser.add_argument("--width", type=float, default=0.05,
                        help="--judged: score bucket width (default 0.05)")
    parser.add_argument("--target", type=float, default=0.8,
                        help="--judged: least P+R precision of a band (default 0.8)")
    parser.add_argument("--max-near-copy", type=float, default=1.0,
                        help="--judged: largest D share of a band (default 1: no bound)")
    parser.add_argument("--max-junk", type=float, default=1.0,
                        help="--judged: largest J share of a band (default 1: no bound)")
    parser.add_argument("--min-pairs", type=int, default=10,
                        help="--judged: fewest judged pairs in a band (default 10)")
    parser.add_argument("--out", type=Path, help="directory for the TSV tables and the PNG")
    args = parser.parse_args(argv)
    if args.pairs is not None:
        return _run_sts(args, parser)
    try:
        return _run_judged(args, parser)
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
