"""Evaluation: the CLI on the shared STS files, per-task whitening, table layout, bad input."""

import json

import numpy as np
import pytest

from model.encode import encode, load_checkpoint
from model.evaluate import (
    char_jaccard_row,
    char_jaccard_similarities,
    evaluate_task,
    format_tables,
    run,
    task_maxlen,
)
from model.sts import StsTask, pair_cosines, read_sts, spearman
from model.whitening import fit_whitening

pytestmark = pytest.mark.usefixtures("single_thread")


def test_cli_on_the_shared_sts_files_writes_json_by_task(tiny_checkpoint, shared_data, tmp_path,
                                                         capsys):
    out = tmp_path / "results.json"
    run(["--checkpoint", str(tiny_checkpoint), "--sts", str(shared_data / "sts"),
         "--limit", "40", "--out", str(out)])
    results = json.loads(out.read_text(encoding="utf-8"))
    assert list(results) == ["ATEC", "BQ", "LCQMC", "PAWSX", "STS-B"]
    for name, task in results.items():
        assert task["pairs"] == 40
        assert task["maxlen"] == (128 if name == "PAWSX" else 64)
        baseline = task["char-jaccard"]
        assert -1 <= baseline["spearman"] <= 1
        assert 0 <= baseline["top1"] <= baseline["top5"] <= baseline["top10"] <= 1
        assert list(task["pooler"]) == ["raw", "whitening", "whitening-256"]
        for scores in task["pooler"].values():
            assert -1 <= scores["spearman"] <= 1
            assert 0 <= scores["top1"] <= scores["top5"] <= scores["top10"] <= 1
    printed = capsys.readouterr().out
    assert printed.splitlines()[1].split() == ["ATEC", "BQ", "LCQMC", "PAWSX", "STS-B"]
    assert printed.splitlines()[2].startswith("char-jaccard")
    retrieval = printed.split("Retrieval accuracy")[1].splitlines()
    assert retrieval[2].startswith("char-jaccard ") and retrieval[3].startswith("pooler raw ")


def test_task_results_match_an_independent_computation(tiny_checkpoint, shared_data):
    model, tokenizer = load_checkpoint(tiny_checkpoint)
    task = read_sts(shared_data / "sts" / "LCQMC.valid.data", limit=60)
    result = evaluate_task(model, tokenizer, task, ["last-avg"], ["none", "full"])
    a = encode(model, tokenizer, task.text_a, pooling="last-avg", normalize=False)
    b = encode(model, tokenizer, task.text_b, pooling="last-avg", normalize=False)
    raw = spearman(task.labels, pair_cosines(a, b))
    whiten = fit_whitening(np.concatenate([a, b]).astype(np.float64))
    white = spearman(task.labels, pair_cosines(whiten(a), whiten(b)))
    assert result["last-avg"]["raw"]["spearman"] == pytest.approx(raw, abs=1e-6)
    assert result["last-avg"]["whitening"]["spearman"] == pytest.approx(white, abs=1e-4)
    assert set(result) == {"pairs", "rejected", "maxlen", "char-jaccard", "last-avg"}


def test_task_without_positive_pairs_has_no_retrieval(tiny_checkpoint):
    model, tokenizer = load_checkpoint(tiny_checkpoint)
    labels = np.array([0.0, 1.0])
    task = StsTask("T", ["今天天气不错", "电影很好"], ["今天天气不好", "电影很好"], labels)
    result = evaluate_task(model, tokenizer, task, whitenings=["none"])
    assert set(result["pooler"]["raw"]) == {"spearman"}
    table = format_tables({"T": result}, ["pooler"], ["none"])
    assert [line.split() for line in table.splitlines()[-2:]] == [
        ["char-jaccard", "-/-/-"], ["pooler", "raw", "-/-/-"]]


def test_pawsx_gets_a_longer_maxlen():
    assert task_maxlen("PAWSX", 64) == 128
    assert task_maxlen("PAWSX", 256) == 256
    assert task_maxlen("LCQMC", 64) == 64


def test_bad_arguments_are_named(tiny_checkpoint, shared_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="--sts path .*nope"):
        run(["--checkpoint", str(tiny_checkpoint), "--sts", str(tmp_path / "nope")])
    with pytest.raises(FileNotFoundError, match="--checkpoint"):
        run(["--checkpoint", str(tmp_path / "none"), "--sts", str(shared_data / "sts")])
    with pytest.raises(SystemExit):
        run(["--checkpoint", str(tiny_checkpoint), "--sts", str(shared_data / "sts"),
             "--limit", "1"])
    bad = tmp_path / "X.data"
    bad.write_text("只有一列\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"X\.data:1: expected"):
        run(["--checkpoint", str(tiny_checkpoint), "--sts", str(bad)])


def _brute_force_jaccard_topk(sentences, groups, k):
    """Each sentence with a partner ranks all others by ``similarity.score`` (ties in pool
    order) and hits when a partner is among the first k."""
    from similarity import score

    hits = queries = 0
    for i, query in enumerate(sentences):
        others = [j for j in range(len(sentences)) if j != i]
        if not any(groups[j] == groups[i] for j in others):
            continue
        queries += 1
        ranked = sorted(others, key=lambda j: -score(query, sentences[j]))
        hits += any(groups[j] == groups[i] for j in ranked[:k])
    return hits / queries


def test_char_jaccard_baseline_matches_a_brute_force_computation(shared_data):
    from similarity import score

    task = read_sts(shared_data / "sts" / "BQ.valid.data", limit=200)
    row = char_jaccard_row(task)
    pool, groups = task.positive_groups()
    for k in (1, 5, 10):
        assert row[f"top{k}"] == pytest.approx(_brute_force_jaccard_topk(pool, groups, k))
    assert 0 < row["top1"] < row["top5"] < row["top10"] < 1
    texts = [*pool[:20], "！！", "？"]  # two sentences without letters or digits: J = 1
    got = char_jaccard_similarities(texts)(np.array([0, 3, 20]))
    expected = [[score(texts[i], t) for t in texts] for i in (0, 3, 20)]
    assert got.tolist() == expected  # bit for bit
