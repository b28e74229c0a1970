"""Labelled sentence-pair files in the "senteval_cn" layout and the metrics computed on them.

A file holds one pair per line, ``text1<TAB>text2<TAB>label`` (UTF-8). Its task name is the file
name up to the first dot: ``LCQMC.valid.data`` → ``LCQMC``. Metrics:

* Spearman's ρ between the labels and the cosine similarity of the two sentence vectors;
* retrieval top-k accuracy (as in kexue.fm/archives/5743, the AM-Softmax post): the sentences of
  the positive pairs are joined into groups of equivalent sentences (union-find over the pairs);
  every sentence with a partner is a query against all other sentences of the pool, ranked by
  cosine (or any score, :func:`ranked_retrieval`), and scores a hit at k when one of its
  partners is among the k most similar (ties in pool order).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.cli import text_lines


@dataclass(frozen=True)
class StsTask:
    """One labelled pair file: ``name``, the two sentence columns and float labels."""

    name: str
    text_a: list[str]
    text_b: list[str]
    labels: np.ndarray
    rejected: tuple[int, ...] = ()
    """Line numbers left out because their label is not a finite number."""

    def positive_groups(self) -> tuple[list[str], np.ndarray]:
        """Distinct sentences of the pairs labelled with the file's highest label, and group ids.

        Binary tasks keep label 1, STS-B keeps label 5. Sentences linked by a positive pair
        (directly or through others) share a group id.
        """
        top = self.labels.max()
        parent: dict[str, str] = {}

        def root(text: str) -> str:
            parent.setdefault(text, text)
            while parent[text] != text:
                parent[text] = parent[parent[text]]
                text = parent[text]
            return text

        for a, b, label in zip(self.text_a, self.text_b, self.labels):
            if label == top and a != b:
                root_a = root(a)
                parent[root_a] = root(b)
        sentences = list(parent)
        roots: dict[str, int] = {}
        groups = [roots.setdefault(root(s), len(roots)) for s in sentences]
        return sentences, np.asarray(groups, dtype=np.int64)


def task_name(path: Path) -> str:
    """Task name of a pair file: its name up to the first dot (``STS-B.valid.data`` → ``STS-B``)."""
    return path.name.split(".", 1)[0]


def sts_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and directories (every ``*.data`` / ``*.tsv`` inside, sorted) into files."""
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix in (".data", ".tsv"))
            if not found:
                raise FileNotFoundError(f"--sts directory {item} holds no *.data or *.tsv files")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"--sts path {item} does not exist")
    return files


def read_sts(path: str | Path, limit: int | None = None) -> StsTask:
    """Read ``text1<TAB>text2<TAB>label`` lines (the first ``limit`` pairs if given).

    A line whose label is not a finite number (``nan``, ``inf``, ``yes``) is rejected: it is left
    out and its number kept in ``StsTask.rejected``, so lines read = pairs + rejected. A line
    without exactly three fields or with an empty sentence, invalid UTF-8 (:func:`text_lines`)
    and a file without pairs raise ``ValueError`` naming the file (and line).
    """
    path = Path(path)
    text_a, text_b, labels, rejected = [], [], [], []
    for number, line in enumerate(text_lines(path), 1):
        if limit is not None and len(labels) >= limit:
            break
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected text1<TAB>text2<TAB>label, "
                             f"got {len(fields)} field(s)")
        a, b, label = fields
        if not a.strip() or not b.strip():
            raise ValueError(f"{path}:{number}: empty sentence")
        value = _finite_label(label)
        if value is None:
            rejected.append(number)
            continue
        labels.append(value)
        text_a.append(a)
        text_b.append(b)
    if not labels:
        also = f" ({len(rejected)} rejected: label not a finite number)" if rejected else ""
        raise ValueError(f"{path} holds no sentence pairs{also}")
    return StsTask(task_name(path), text_a, text_b, np.asarray(labels, dtype=np.float64),
                   tuple(rejected))


def _finite_label(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def rejected_note(task: StsTask, path: str | Path, shown: int = 5) -> str:
    """``"PATH: N line(s) rejected, label not a finite number (lines 3, 9, ...)"``, or ``""``."""
    if not task.rejected:
        return ""
    lines = ", ".join(map(str, task.rejected[:shown])) + (", ..." if len(task.rejected) > shown
                                                           else "")
    return (f"{path}: {len(task.rejected)} line(s) rejected, label not a finite number "
            f"(lines {lines})")


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def spearman(labels: np.ndarray, scores: np.ndarray) -> float:
    """Spearman's rank correlation ρ (ties get average ranks), via ``scipy.stats.spearmanr``;
    NaN (undefined) when either side is constant, without scipy's ``ConstantInputWarning``,
    which printed a source line of ours on stderr."""
    from scipy.stats import spearmanr

    if len(labels) < 2 or np.ptp(labels) == 0 or np.ptp(scores) == 0:
        return math.nan
    return float(spearmanr(labels, scores).statistic)


def pair_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_i) for each row i."""
    return np.sum(normalize_rows(a) * normalize_rows(b), axis=1)


def retrieval_accuracy(
    vectors: np.ndarray, groups: np.ndarray, ks: tuple[int, ...] = (1, 5, 10), chunk: int = 512
) -> dict[str, float]:
    """Top-k accuracy of finding a same-group sentence among all others by cosine similarity.

    ``vectors`` (n, d) and ``groups`` (n,) describe the pool; see :func:`ranked_retrieval`.
    """
    unit = normalize_rows(np.asarray(vectors, dtype=np.float32))
    return ranked_retrieval(lambda rows: unit[rows] @ unit.T, groups, ks, chunk)


def ranked_retrieval(
    similarities: Callable[[np.ndarray], np.ndarray],
    groups: np.ndarray,
    ks: tuple[int, ...] = (1, 5, 10),
    chunk: int = 512,
) -> dict[str, float]:
    """Top-k accuracy of finding a same-group sentence among all others of a pool of n.

    ``similarities(rows)`` gives the (len(rows), n) float scores of the pool sentences ``rows``
    against the whole pool (a new array: it is overwritten), ``groups`` (n,) the group of each
    sentence; sentences alone in their group are candidates but not queries. A query ranks the
    other n − 1 sentences by score, ties in pool order, and hits at k when its first partner in
    that order is among the first k. Returns ``{"top1": ..., "top5": ..., "top10": ...}`` in
    [0, 1]. Queries are scored ``chunk`` at a time to bound memory at a few chunk × n arrays.
    """
    groups = np.asarray(groups)
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    queries = np.flatnonzero(counts[inverse] > 1)
    if len(queries) == 0:
        raise ValueError("retrieval needs at least one group of two or more sentences")
    pool = np.arange(len(groups))
    hits = np.zeros(len(ks))
    for start in range(0, len(queries), chunk):
        rows = queries[start:start + chunk]
        sims = similarities(rows)
        local = np.arange(len(rows))
        sims[local, rows] = -np.inf
        partner = groups[None, :] == groups[rows][:, None]
        partner[local, rows] = False
        best = np.where(partner, sims, -np.inf).max(axis=1, keepdims=True)  # best partner's score
        first = np.argmax(partner & (sims == best), axis=1)[:, None]  # and its pool index
        position = (sims > best).sum(axis=1) + ((sims == best) & (pool < first)).sum(axis=1)
        hits += [(position < k).sum() for k in ks]
    return {f"top{k}": float(h / len(queries)) for k, h in zip(ks, hits)}
