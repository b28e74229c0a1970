"""Corpus quality: the three pair pipelines on the shared samples, measured against judged pairs.

    python benchmarks/corpus_quality.py [--judged DIR] [--sample 200] [--seed 12] [--out DIR]
                                        [--reuse] [--schemes qa,doc,question] [--scores LO:HI]
                                        [--todo DIR]

Each scheme's pipeline (``pipelines.qa_pairs``, ``doc_pairs``, ``question_pairs``) runs with its
defaults on ``../shared/data`` (``qa/qa_sample.jsonl``, ``docs/docs_sample.jsonl``,
``groups/groups_sample.jsonl``) into ``--out DIR/SCHEME`` (default: a temporary folder);
``--reuse`` reads what an earlier run wrote there instead (e.g. a run with a lowered ``--low``).
Every emitted pair is joined with the judged TSVs under ``--judged`` (all ``*.tsv``, read by
``similarity.calibrate.read_judged``) on the unordered exact-text key ``pair_key`` =
``(min(text_a, text_b), max(text_a, text_b))``. Per scheme it prints:

- input records read (the run's summary) and pairs written;
- coverage over all emitted pairs: judged emitted pairs / emitted pairs;
- the audit sample: the ``--sample`` emitted pairs that ``pipelines.judge_sample.draw_sample``
  draws (smallest seeded content hash of the key), optionally only pairs with
  ``LO <= score < HI`` (``--scores``); its coverage (judged / sampled) must be >= 80% before a
  figure is quoted;
- the shares of P+R, P, R, N, D, J over the judged pairs of the sample;
- P+R pairs per 1,000 input records, estimated as
  ``1000 * pairs_written * share(P+R) / records_read`` (the share from the sample; with
  ``--scores`` only the pairs in that range count as written).

With ``--todo DIR`` the sampled pairs not yet judged are written to ``DIR/SCHEME-todo.tsv``
(``similarity.calibrate.write_judged``, empty ``label`` and ``reason``, by score), ready for
judging: new splits and rules create new pairs. Labels: docs/judging.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines import doc_pairs, qa_pairs, question_pairs
from pipelines.io import read_json, shard_prefix
from pipelines.job import OptionError
from pipelines.judge_sample import draw_sample
from pipelines.schema import SUMMARY_FILE
from similarity.calibrate import LABELS, JudgedPair, read_judged, write_judged

SHARED = Path(os.environ.get("SIMPAIRS_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]
SHARES = ("P+R", *LABELS)
DEFAULT_SAMPLE = 200
DEFAULT_SEED = 12
"""The seed the first judged samples (``benchmarks/judged/README.md``) were drawn with, so the
audit sample of an unchanged output starts with the pairs judged there."""
ALL = sys.maxsize


@dataclass(frozen=True)
class SchemeRun:
    """One pair pipeline and the shared sample it reads."""

    run: Callable[[Sequence[str] | None], object]
    input: str


RUNS = {
    "qa": SchemeRun(qa_pairs.run, "qa/qa_sample.jsonl"),
    "doc": SchemeRun(doc_pairs.run, "docs/docs_sample.jsonl"),
    "question": SchemeRun(question_pairs.run, "groups/groups_sample.jsonl"),
}

Key = tuple[str, str]


def judged_files(folder: Path) -> list[Path]:
    """The judged TSVs of ``folder`` (``*.tsv``, sorted; none when the folder is absent)."""
    return sorted(folder.glob("*.tsv")) if folder.is_dir() else []


def judged_by_key(paths: Sequence[Path]) -> dict[Key, JudgedPair]:
    """The judged pairs of all ``paths`` by key (``similarity.calibrate.read_judged`` each).

    A pair judged in two files with the same label counts once; with two different labels it
    is an error (``ValueError`` naming both files), so a figure never rests on a coin toss.
    """
    judged: dict[Key, tuple[JudgedPair, Path]] = {}
    for path in paths:
        for row in read_judged(path):
            earlier = judged.setdefault(row.key, (row, path))
            if earlier[0].label != row.label:
                raise ValueError(f"{path}: pair {row.key} judged {row.label} here but "
                                 f"{earlier[0].label} in {earlier[1]}")
    return {key: row for key, (row, _) in judged.items()}


@dataclass(frozen=True)
class SchemeQuality:
    """The figures printed for one scheme (see the module docstring)."""

    scheme: str
    records: int
    written: int
    judged: int
    sampled: int
    sample_labels: Mapping[str, int]

    @property
    def sample_judged(self) -> int:
        return sum(self.sample_labels.values())

    def share(self, which: str) -> float | None:
        """Share of ``which`` (a label, or ``'P+R'``) among the judged sampled pairs."""
        if not self.sample_judged:
            return None
        count = sum(self.sample_labels.get(label, 0) for label in which.split("+"))
        return count / self.sample_judged

    def good_per_1000_records(self) -> float | None:
        """``1000 * written * share(P+R) / records`` (None without judged pairs or records)."""
        precision = self.share("P+R")
        if precision is None or not self.records:
            return None
        return 1000 * self.written * precision / self.records


def measure(scheme: str, records: int, emitted: Sequence[JudgedPair],
            sample: Sequence[JudgedPair], judged: Mapping[Key, JudgedPair]
            ) -> tuple[SchemeQuality, list[JudgedPair]]:
    """The figures of one scheme from its ``emitted`` pairs and audit ``sample`` of them, and
    the sampled pairs not yet judged (in sample order)."""
    labels = Counter(judged[pair.key].label for pair in sample if pair.key in judged)
    quality = SchemeQuality(
        scheme=scheme,
        records=records,
        written=len(emitted),
        judged=sum(pair.key in judged for pair in emitted),
        sampled=len(sample),
        sample_labels=dict(labels),
    )
    return quality, [pair for pair in sample if pair.key not in judged]


def _percent(part: float | None) -> str:
    return "-" if part is None else f"{100 * part:.0f}%"


def _fraction(part: int, whole: int) -> str:
    """``'part/whole (share%)'``."""
    return f"{part:,}/{whole:,} ({_percent(part / whole if whole else None)})"


def format_table(rows: Sequence[SchemeQuality]) -> str:
    """The per-scheme figures as a Markdown table."""
    head = ["scheme", "records", "pairs written", "coverage all", "sample", "coverage sample",
            *SHARES, "P+R per 1k records"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        per_1000 = row.good_per_1000_records()
        cells = [
            row.scheme, f"{row.records:,}", f"{row.written:,}",
            _fraction(row.judged, row.written),
            f"{row.sampled}",
            _fraction(row.sample_judged, row.sampled),
            *(_percent(row.share(which)) for which in SHARES),
            "-" if per_1000 is None else f"{per_1000:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def records_read(output: Path) -> int:
    """Input records the run read (``summary.json``'s accounting)."""
    return read_json(shard_prefix(str(output), SUMMARY_FILE))["accounting"]["records_read"]


def run_scheme(scheme: str, output: Path) -> None:
    """Run ``scheme``'s pipeline with defaults on its shared sample, its printout silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        RUNS[scheme].run(["--input", str(SHARED / RUNS[scheme].input), "--output", str(output)])


def parse_scores(text: str) -> tuple[float, float]:
    """``'LO:HI'`` → ``(LO, HI)`` with ``LO < HI``; ``argparse`` turns errors into usage."""
    try:
        lo, hi = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI, got {text!r}") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"need LO < HI, got {text!r}")
    return lo, hi


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", type=Path, default=REPO / "benchmarks" / "judged",
                        help="folder of judged TSVs (all *.tsv); default benchmarks/judged")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                        help="audit sample size per scheme (default 200)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the audit sample (default {DEFAULT_SEED})")
    parser.add_argument("--out", type=Path, default=None,
                        help="pipeline outputs go to OUT/SCHEME; default a temporary folder")
    parser.add_argument("--reuse", action="store_true",
                        help="read OUT/SCHEME as written earlier instead of running")
    parser.add_argument("--schemes", default=",".join(RUNS),
                        help="comma-separated schemes (default qa,doc,question)")
    parser.add_argument("--scores", type=parse_scores, default=(0.0, float("inf")),
                        metavar="LO:HI", help="only pairs with LO <= score < HI count and are "
                        "sampled (default: all)")
    parser.add_argument("--todo", type=Path, default=None,
                        help="write the sampled pairs not yet judged to TODO/SCHEME-todo.tsv")
    args = parser.parse_args(argv)
    schemes = args.schemes.split(",")
    unknown = sorted(set(schemes) - set(RUNS))
    if unknown:
        parser.error(f"--schemes: unknown {unknown}, choose from {sorted(RUNS)}")
    if args.sample < 1:
        parser.error(f"--sample must be >= 1, got {args.sample}")
    if args.reuse and args.out is None:
        parser.error("--reuse needs --out")
    args.schemes = schemes
    return args


def measure_scheme(scheme: str, output: Path, judged: Mapping[Key, JudgedPair],
                   args: argparse.Namespace) -> SchemeQuality:
    """Run (unless ``--reuse``) and measure one scheme; write its to-do TSV with ``--todo``."""
    if not args.reuse:
        run_scheme(scheme, output)
    emitted = draw_sample(str(output), ALL, args.seed, *args.scores)
    sample = draw_sample(str(output), args.sample, args.seed, *args.scores)
    quality, todo = measure(scheme, records_read(output), emitted, sample, judged)
    if args.todo is not None:
        args.todo.mkdir(parents=True, exist_ok=True)
        write_judged(args.todo / f"{scheme}-todo.tsv", todo)
    return quality


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table (and write the to-do TSVs); 2 with a one-line error on a bad file."""
    args = parse_args(argv)
    files = judged_files(args.judged)
    try:
        judged = judged_by_key(files)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for scheme in args.schemes:
            try:
                rows.append(measure_scheme(scheme, out / scheme, judged, args))
            except (OptionError, OSError) as err:
                print(f"error: {scheme}: {err}", file=sys.stderr)
                return 2
    lo, hi = args.scores
    print(f"judged: {len(judged):,} pairs in {len(files)} files under {args.judged}; "
          f"sample {args.sample} per scheme, seed {args.seed}; scores in [{lo}, {hi})")
    print(format_table(rows))
    if args.todo is not None:
        print(f"unjudged sampled pairs: {args.todo}/SCHEME-todo.tsv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
