"""STS and retrieval evaluation of a RoFormer-Sim checkpoint, laid out like the RoFormer-Sim paper.

Usage::

    python -m model.evaluate --checkpoint DIR --sts FILE_OR_DIR... [--pooling pooler ...] \\
        [--whitening none full 256] [--maxlen 64] [--limit N] [--out results.json]

For every pair file (``text1<TAB>text2<TAB>label``; the task is named after the file, e.g.
``LCQMC.valid.data`` → ``LCQMC``) and every pooling:

* Spearman's ρ between the labels and cos(u, v) of the two sentences' vectors, with the vectors
  raw, whitened (``full``) and whitened to the first 256 dimensions (``256``); the whitening is
  fitted per task on that task's sentence vectors (:mod:`model.whitening`), as in
  kexue.fm/archives/8321 and 8454, where each table cell reads raw/whitening/whitening-256;
* retrieval top-1/5/10 accuracy among the sentences of the task's positive pairs
  (:func:`model.sts.retrieval_accuracy`), under the same whitening variants.

A character-Jaccard row (``similarity.score``, no model) is printed beside the model as the floor,
in both tables: its retrieval ranks the same pool of sentences by that score.
Sentences are truncated to ``--maxlen`` tokens, and to at least 128 for PAWSX (long, translated
sentences), as in the reference evaluation, with a warning counting the sentences cut. Lines
whose label is not a finite number are left out and counted (``rejected``). Scores are printed
×100; the JSON written to ``--out`` (strict: an undefined ρ is ``null``) keeps them in [−1, 1]
with the task names as keys.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np
import torch

from model import cli
from model.encode import POOLINGS, check_maxlen, encode_ids, load_checkpoint, tokenize
from model.roformer import RoFormerSim
from model.sts import (
    StsTask,
    pair_cosines,
    ranked_retrieval,
    read_sts,
    rejected_note,
    retrieval_accuracy,
    spearman,
    sts_files,
)
from model.tokenizer import Tokenizer
from model.whitening import fit_whitening

WHITENINGS = {"none": ("raw", None), "full": ("whitening", 0), "256": ("whitening-256", 256)}
"""``--whitening`` value → (label in the table and JSON, dimensions kept: 0 = all)."""
LONG_TASKS = {"PAWSX": 128}
"""Tasks evaluated with a larger minimum maxlen."""
BASELINE = "char-jaccard"


def task_maxlen(task: str, maxlen: int) -> int:
    """``maxlen`` for ``task``: raised to 128 for PAWSX."""
    return max(maxlen, LONG_TASKS.get(task, 0))


def char_jaccard_row(task: StsTask) -> dict[str, float]:
    """The no-model floor: Spearman ρ of the labels against ``similarity.score`` (the default
    char-Jaccard variant) and, when the task has positive pairs, retrieval top-1/5/10 among the
    same pool of sentences as the model, ranked by that score."""
    from similarity import score

    scores = np.array([score(a, b) for a, b in zip(task.text_a, task.text_b)])
    row = {"spearman": spearman(task.labels, scores)}
    pool, groups = task.positive_groups()
    if pool:
        row.update(ranked_retrieval(char_jaccard_similarities(pool), groups))
    return row


def char_jaccard_similarities(sentences: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """``similarities(rows)``: (len(rows), n) ``similarity.score`` of ``sentences[rows]`` against
    all ``sentences``, as a sparse product.

    Each sentence's profile (the token set that ``score`` compares) is a 0/1 row of a sparse
    matrix M over all tokens seen, so |A ∩ B| = (M Mᵀ)_ab and |A ∪ B| = |A| + |B| − |A ∩ B|;
    J = |A ∩ B| / |A ∪ B| (1 when both profiles are empty) is the same correctly rounded
    division of integers as ``score`` performs.
    """
    from scipy import sparse

    from similarity import profile

    profiles = [profile(s) for s in sentences]
    tokens: dict[str, int] = {}
    columns = [tokens.setdefault(token, len(tokens)) for p in profiles for token in p]
    sizes = np.array([len(p) for p in profiles], dtype=np.float64)
    indptr = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    matrix = sparse.csr_matrix((np.ones(len(columns)), columns, indptr),
                               shape=(len(profiles), max(1, len(tokens))))
    transposed = matrix.T.tocsr()

    def similarities(rows: np.ndarray) -> np.ndarray:
        inter = (matrix[rows] @ transposed).toarray()
        union = sizes[rows][:, None] + sizes[None, :] - inter
        return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)

    return similarities


def evaluate_task(
    model: RoFormerSim,
    tokenizer: Tokenizer,
    task: StsTask,
    poolings: Sequence[str] = ("pooler",),
    whitenings: Sequence[str] = ("none", "full", "256"),
    maxlen: int = 64,
    batch_size: int = 64,
) -> dict:
    """``{"pairs", "rejected", "maxlen", "char-jaccard": {...}, POOLING: {LABEL: {"spearman",
    "top1", ...}}}``; ``rejected`` counts the file's lines left out (:func:`model.sts.read_sts`).

    Each distinct sentence is tokenised once (truncated to ``maxlen`` with a warning) and encoded
    once per pooling (unnormalised vectors, so that whitening sees the raw geometry). Retrieval
    keys are absent when the task has no positive pair. A Spearman ρ is NaN when the labels or
    the cosines are all equal (then ``null`` in the JSON).
    """
    maxlen = task_maxlen(task.name, maxlen)
    check_maxlen(model, maxlen)
    sentences = list(dict.fromkeys(task.text_a + task.text_b))
    ids = tokenize(tokenizer, sentences, maxlen, name=f"{task.name} sentences")
    index = {s: i for i, s in enumerate(sentences)}
    rows_a = [index[s] for s in task.text_a]
    rows_b = [index[s] for s in task.text_b]
    pool, groups = task.positive_groups()
    rows_pool = [index[s] for s in pool]
    result: dict = {"pairs": len(task.labels), "rejected": len(task.rejected), "maxlen": maxlen,
                    BASELINE: char_jaccard_row(task)}
    for pooling in poolings:
        vectors = encode_ids(model, tokenizer, ids, batch_size=batch_size, pooling=pooling,
                             normalize=False).astype(np.float64)
        a, b = vectors[rows_a], vectors[rows_b]
        result[pooling] = {}
        for name in whitenings:
            label, dims = WHITENINGS[name]
            whiten = None if dims is None else fit_whitening(np.concatenate([a, b]), dims or None)
            view = vectors if whiten is None else whiten(vectors)
            scores = {"spearman": spearman(task.labels, pair_cosines(view[rows_a], view[rows_b]))}
            if pool:
                scores.update(retrieval_accuracy(view[rows_pool], groups))
            result[pooling][label] = scores
    return result


def _cell(values: list[float | None]) -> str:
    return "/".join("-" if v is None else f"{100 * v:.2f}" for v in values)


def _table(title: str, header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    width = max(len(name) for name, _ in rows)
    columns = [max([len(h)] + [len(cells[i]) for _, cells in rows]) for i, h in enumerate(header)]
    lines = [title, "  ".join([" " * width] + [h.ljust(w) for h, w in zip(header, columns)])]
    for name, cells in rows:
        lines.append("  ".join([name.ljust(width)] + [c.ljust(w) for c, w in zip(cells, columns)]))
    return "\n".join(line.rstrip() for line in lines)


def format_tables(results: dict[str, dict], poolings: Sequence[str],
                  whitenings: Sequence[str]) -> str:
    """The Spearman table (one cell per task: raw/whitening/whitening-256) and the retrieval
    table (the char-Jaccard row, then one row per pooling and whitening; cells
    top-1/top-5/top-10), all ×100."""
    tasks = list(results)
    labels = [WHITENINGS[w][0] for w in whitenings]
    spearman_rows = [(BASELINE, [_cell([results[t][BASELINE]["spearman"]]) for t in tasks])]
    spearman_rows += [(p, [_cell([results[t][p][lab]["spearman"] for lab in labels])
                           for t in tasks]) for p in poolings]
    retrieval = [(BASELINE, [results[t][BASELINE] for t in tasks])]
    retrieval += [(f"{p} {lab}", [results[t][p][lab] for t in tasks])
                  for p in poolings for lab in labels]
    retrieval_rows = [(name, [_cell([scores.get(f"top{k}") for k in (1, 5, 10)])
                              for scores in row]) for name, row in retrieval]
    return "\n\n".join([
        _table(f"Spearman ×100 ({'/'.join(labels)})", tasks, spearman_rows),
        _table("Retrieval accuracy ×100 (top-1/top-5/top-10) among the positive pairs' sentences",
               tasks, retrieval_rows),
    ])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.evaluate",
                                description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="directory written by save_pretrained")
    p.add_argument("--sts", nargs="+", required=True,
                   help="pair files (text1<TAB>text2<TAB>label) or directories of *.data/*.tsv")
    p.add_argument("--pooling", nargs="+", choices=POOLINGS, default=["pooler"])
    p.add_argument("--whitening", nargs="+", choices=list(WHITENINGS),
                   default=list(WHITENINGS), help="none (raw), full, 256 (first 256 dimensions)")
    p.add_argument("--maxlen", type=int, default=64, help="tokens per sentence (PAWSX: >= 128)")
    p.add_argument("--limit", type=int, help="evaluate only the first N pairs of each file")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--out", help="JSON file for the results (task names as keys)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 2:
        p.error("--limit must be at least 2 pairs")
    return args


def run(argv: Sequence[str] | None = None) -> dict:
    """Evaluate every ``--sts`` file; print the tables, write ``--out``; returns the results."""
    args = parse_args(argv)
    out = None if args.out is None else cli.check_output(args.out, "--out")
    device = cli.check_device(args.device)
    files = sts_files(args.sts)
    model, tokenizer = load_checkpoint(args.checkpoint, device)
    results = {}
    for path in files:
        task = read_sts(path, args.limit)
        if task.name in results:
            raise ValueError(f"--sts names task {task.name} twice ({path})")
        print(f"{task.name}: {len(task.labels)} pairs from {path}", file=sys.stderr)
        if task.rejected:
            print(rejected_note(task, path), file=sys.stderr)
        results[task.name] = evaluate_task(model, tokenizer, task, args.pooling, args.whitening,
                                           args.maxlen, args.batch_size)
    print(format_tables(results, args.pooling, args.whitening))
    if out is not None:
        out.write_text(cli.json_text(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry: :func:`run` with errors as exit codes (:func:`model.cli.main`)."""
    return cli.main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
