"""STS file reading, Spearman and retrieval accuracy against independent computations."""

import numpy as np
import pytest

from model.sts import (
    StsTask,
    pair_cosines,
    ranked_retrieval,
    read_sts,
    retrieval_accuracy,
    spearman,
    sts_files,
    task_name,
)


def test_task_names_come_from_file_names(shared_data):
    files = sts_files([shared_data / "sts"])
    assert [task_name(f) for f in files] == ["ATEC", "BQ", "LCQMC", "PAWSX", "STS-B"]


def test_read_real_file_with_limit(shared_data):
    task = read_sts(shared_data / "sts" / "STS-B.valid.data", limit=3)
    assert task.name == "STS-B"
    assert len(task.text_a) == len(task.text_b) == 3
    assert task.labels.tolist() == [5.0, 4.0, 2.0]
    assert read_sts(shared_data / "sts" / "PAWSX.valid.data").labels.shape == (2000,)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a\tb\n", r"bad\.tsv:1: expected"),
        ("a\tb\tnan\nc\td\tyes\n", r"bad\.tsv holds no sentence pairs \(2 rejected"),
        ("a\t \t1\n", r"bad\.tsv:1: empty sentence"),
        ("", "holds no sentence pairs"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_sts(path)


def test_missing_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        sts_files([tmp_path / "nope"])
    with pytest.raises(FileNotFoundError, match="no \\*.data"):
        sts_files([tmp_path])


def _ranks(x):
    """Average ranks (1-based), written out independently of scipy."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def test_spearman_equals_pearson_of_average_ranks():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=200).astype(float)
    scores = labels + rng.normal(size=200)
    expected = np.corrcoef(_ranks(labels), _ranks(scores))[0, 1]
    assert spearman(labels, scores) == pytest.approx(expected, abs=1e-12)
    assert spearman(labels, labels * 3 + 1) == pytest.approx(1.0)


def test_pair_cosines():
    a = np.array([[1.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(pair_cosines(a, b), [0.0, 1.0])


def test_positive_groups_join_chains():
    task = StsTask("t", ["a", "b", "x", "p"], ["b", "c", "y", "q"], np.array([1.0, 1.0, 0.0, 1.0]))
    sentences, groups = task.positive_groups()
    assert sentences == ["a", "b", "c", "p", "q"]
    assert groups[0] == groups[1] == groups[2] != groups[3] == groups[4]


def _brute_force_topk(vectors, groups, k):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    hits = total = 0
    for i in range(len(vectors)):
        if (groups == groups[i]).sum() < 2:
            continue
        total += 1
        sims = [(float(unit[i] @ unit[j]), j) for j in range(len(vectors)) if j != i]
        best = [j for _, j in sorted(sims, key=lambda s: -s[0])[:k]]
        hits += any(groups[j] == groups[i] for j in best)
    return hits / total


def test_retrieval_matches_brute_force_and_chunking():
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 25, size=60)
    vectors = rng.normal(size=(25, 8))[groups] + rng.normal(scale=1.2, size=(60, 8))
    got = retrieval_accuracy(vectors, groups, ks=(1, 5, 10), chunk=7)
    for k in (1, 5, 10):
        assert got[f"top{k}"] == pytest.approx(_brute_force_topk(vectors, groups, k))
    assert got == retrieval_accuracy(vectors, groups)
    assert 0 < got["top1"] <= got["top5"] <= got["top10"] <= 1


def test_ranked_retrieval_breaks_ties_in_pool_order():
    scores = np.array([[0, 2, 1, 1, 1], [2, 0, 1, 1, 1], [1, 1, 0, 3, 3],
                       [1, 1, 3, 0, 3], [1, 1, 3, 3, 0]], dtype=float)
    groups = np.array([0, 1, 0, 2, 1])
    # query 0: order 1, 2 (partner) -> rank 2; query 2: 3, 4, 0 (partner) -> rank 3;
    # query 1: 0, 2, 3, 4 (partner) -> rank 4; query 4: 2, 3, 0, 1 (partner) -> rank 4
    got = ranked_retrieval(lambda rows: scores[rows].copy(), groups, ks=(1, 2, 3, 4), chunk=3)
    assert got == {"top1": 0.0, "top2": 0.25, "top3": 0.5, "top4": 1.0}


def test_retrieval_needs_a_group():
    with pytest.raises(ValueError, match="at least one group"):
        retrieval_accuracy(np.eye(3), np.array([0, 1, 2]))
