"""Corpus quality: the three pair pipelines on the shared samples, measured against judged pairs.

    python benchmarks/corpus_quality.py [--judged DIR] [--sample 200] [--seed 0] [--out DIR]
                                        [--reuse] [--schemes qa,doc,question] [--scores LO:HI]
                                        [--todo DIR]

Each scheme's pipeline (``pipelines.qa_pairs``, ``doc_pairs``, ``question_pairs``) runs with its
defaults on ``../shared/data`` (``qa/qa_sample.jsonl``, ``docs/docs_sample.jsonl``,
``groups/groups_sample.jsonl``) into ``--out DIR/SCHEME`` (default: a temporary folder);
``--reuse`` reads what an earlier run wrote there instead (e.g. a run with a lowered ``--low``).
Every emitted pair is joined with the judged TSVs under ``--judged`` (all ``*.tsv``, header
``text_a text_b score scheme label reason``) on the unordered exact-text key
``(min(text_a, text_b), max(text_a, text_b))``. Per scheme it prints:

- pairs written, and the input records read (``summary.json``);
- coverage over all emitted pairs: judged emitted pairs / emitted pairs;
- the audit sample: the ``--sample`` emitted pairs with the smallest
  ``content_hash(seed, text_a, text_b)`` (canonical order), optionally only those with
  ``LO <= score < HI`` (``--scores``); its coverage (judged / sampled) is the one that must be
  >= 80% before a figure is quoted;
- the shares of P+R, P, R, N, D, J over the judged pairs of the sample;
- P+R pairs per 1,000 input records, estimated as
  ``1000 * pairs_written * share(P+R) / records_read`` (the share from the sample; with
  ``--scores`` only the pairs in that range count as written).

With ``--todo DIR`` the sampled pairs not yet judged are written to ``DIR/SCHEME-todo.tsv`` in
the judged-TSV format with empty ``label`` and ``reason``, ready for judging (new splits and
rules create new pairs). Labels: docs/judging.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines import doc_pairs, qa_pairs, question_pairs
from pipelines.hashing import content_hash
from pipelines.io import read_json, read_pairs, shard_prefix
from pipelines.schema import SUMMARY_FILE

SHARED = Path(os.environ.get("SIMPAIRS_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]
JUDGED_COLUMNS = ("text_a", "text_b", "score", "scheme", "label", "reason")
LABELS = ("P", "R", "N", "D", "J")
SHARES = ("P+R", "P", "R", "N", "D", "J")
DEFAULT_SAMPLE = 200


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


@dataclass(frozen=True)
class Pair:
    """One emitted (or judged) pair; ``text_a < text_b`` is not assumed."""

    text_a: str
    text_b: str
    score: float
    scheme: str

    @property
    def key(self) -> Key:
        return pair_key(self.text_a, self.text_b)


@dataclass(frozen=True)
class Judgement:
    """A judged pair: its label in ``LABELS``, the reason, and the file:line it came from."""

    pair: Pair
    label: str
    reason: str
    where: str


def pair_key(text_a: str, text_b: str) -> Key:
    """The unordered exact-text key ``(min, max)`` that identifies a pair across files."""
    return (text_a, text_b) if text_a <= text_b else (text_b, text_a)


def read_judged(paths: Iterable[Path]) -> dict[Key, Judgement]:
    """All judged pairs of the TSV files ``paths``, by key.

    Raises ``ValueError`` naming the file and line of a bad header, a row without 6 fields, a
    label outside ``LABELS``, a score that is not a number, or a pair judged twice with two
    different labels (the same label twice is fine: e.g. a pair judged in two rounds).
    """
    judged: dict[Key, Judgement] = {}
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines or tuple(lines[0].split("\t")) != JUDGED_COLUMNS:
            raise ValueError(f"{path}:1: header must be {chr(9).join(JUDGED_COLUMNS)!r}")
        for number, line in enumerate(lines[1:], 2):
            where = f"{path}:{number}"
            fields = line.split("\t")
            if len(fields) != len(JUDGED_COLUMNS):
                raise ValueError(f"{where}: expected {len(JUDGED_COLUMNS)} tab-separated fields, "
                                 f"got {len(fields)}")
            text_a, text_b, score, scheme, label, reason = fields
            if label not in LABELS:
                raise ValueError(f"{where}: label {label!r} is not one of {'/'.join(LABELS)}")
            try:
                pair = Pair(text_a, text_b, float(score), scheme)
            except ValueError:
                raise ValueError(f"{where}: score {score!r} is not a number") from None
            earlier = judged.get(pair.key)
            if earlier is not None and earlier.label != label:
                raise ValueError(f"{where}: pair judged {label} here but {earlier.label} at "
                                 f"{earlier.where}")
            judged.setdefault(pair.key, Judgement(pair, label, reason, where))
    return judged


def judged_files(folder: Path) -> list[Path]:
    """The judged TSVs of ``folder`` (``*.tsv``, sorted; none when the folder is absent)."""
    return sorted(folder.glob("*.tsv")) if folder.is_dir() else []


def audit_sample(pairs: Iterable[Pair], size: int, seed: int) -> list[Pair]:
    """The ``size`` pairs with the smallest ``content_hash(seed, *key)``, in that order.

    Adding or removing other pairs never changes whether a given pair ranks before another,
    so a later run's sample overlaps the earlier one wherever the output did not change.
    """
    return sorted(pairs, key=lambda pair: content_hash(seed, *pair.key))[:size]


def in_scores(pairs: Iterable[Pair], scores: tuple[float, float] | None) -> list[Pair]:
    """The pairs with ``lo <= score < hi`` (all of them when ``scores`` is None)."""
    if scores is None:
        return list(pairs)
    lo, hi = scores
    return [pair for pair in pairs if lo <= pair.score < hi]


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


def measure(scheme: str, records: int, emitted: Sequence[Pair],
            judged: Mapping[Key, Judgement], sample_size: int, seed: int
            ) -> tuple[SchemeQuality, list[Pair]]:
    """The figures of one scheme and its sampled pairs not yet judged (in sample order)."""
    sample = audit_sample(emitted, sample_size, seed)
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


def write_todo(path: Path, pairs: Sequence[Pair]) -> None:
    """``pairs`` as a judged TSV with empty label and reason; text order as emitted."""
    rows = ["\t".join(JUDGED_COLUMNS)]
    for pair in pairs:
        for text in (pair.text_a, pair.text_b):
            if "\t" in text or "\n" in text:
                raise ValueError(f"{path}: a {pair.scheme} text holds a tab or newline: {text!r}")
        rows.append("\t".join([pair.text_a, pair.text_b, f"{pair.score:.4f}", pair.scheme, "", ""]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def emitted_pairs(output: Path) -> list[Pair]:
    """The pairs a pipeline wrote into ``output`` (its Parquet shards)."""
    return [Pair(row["text_a"], row["text_b"], row["score"], row["scheme"])
            for row in read_pairs(str(output)).to_pylist()]


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
    parser.add_argument("--seed", type=int, default=0, help="seed of the audit sample")
    parser.add_argument("--out", type=Path, default=None,
                        help="pipeline outputs go to OUT/SCHEME; default a temporary folder")
    parser.add_argument("--reuse", action="store_true",
                        help="read OUT/SCHEME as written earlier instead of running")
    parser.add_argument("--schemes", default=",".join(RUNS),
                        help="comma-separated schemes (default qa,doc,question)")
    parser.add_argument("--scores", type=parse_scores, default=None, metavar="LO:HI",
                        help="only pairs with LO <= score < HI count and are sampled")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        judged = read_judged(judged_files(args.judged))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for scheme in args.schemes:
            if not args.reuse:
                run_scheme(scheme, out / scheme)
            emitted = in_scores(emitted_pairs(out / scheme), args.scores)
            quality, todo = measure(scheme, records_read(out / scheme), emitted, judged,
                                    args.sample, args.seed)
            rows.append(quality)
            if args.todo is not None:
                write_todo(args.todo / f"{scheme}-todo.tsv", todo)
    files = judged_files(args.judged)
    print(f"judged: {len(judged):,} pairs in {len(files)} files under {args.judged}; "
          f"sample {args.sample} per scheme, seed {args.seed}"
          + ("" if args.scores is None else f", scores in [{args.scores[0]}, {args.scores[1]})"))
    print(format_table(rows))
    if args.todo is not None:
        print(f"unjudged sampled pairs: {args.todo}/SCHEME-todo.tsv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
