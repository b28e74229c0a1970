"""Validation during training: valid loss and STS dev Spearman in metrics.jsonl, best/, plot."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model import RoFormerSim
from model.data import MANIFEST_FILE
from model.metrics import EVAL
from model.plot import main as plot_main
from model.train import main, read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, lcqmc_positives):
    """A corpus folder: train and valid shards of real LCQMC positives and their manifest."""
    positives = lcqmc_positives[:96]
    out = tmp_path_factory.mktemp("corpus")
    for name, part in (("train-00000-of-00001.parquet", positives[:64]),
                       ("valid-00000-of-00001.parquet", positives[64:])):
        pq.write_table(pa.table({"text_a": [r[0] for r in part],
                                 "text_b": [r[1] for r in part]}), out / name)
    (out / MANIFEST_FILE).write_text(json.dumps({"shards": [
        {"file": "train-00000-of-00001.parquet", "split": "train"},
        {"file": "valid-00000-of-00001.parquet", "split": "valid"}]}))
    return out


def args(data, vocab, output, *extra):
    return ["--data", str(data), "--output", str(output), "--config", "tiny", "--vocab",
            str(vocab), "--batch_size", "8", "--maxlen", "16", "--lr", "1e-3",
            "--num_workers", "0", "--no_progress", "--seed", "5", *map(str, extra)]


def test_eval_records_best_checkpoint_and_plot(corpus, sts_dev, vocab, tmp_path):
    run = tmp_path / "run"
    main(args(corpus, vocab, run, "--steps", 5, "--eval_every", 2, "--sts_dev", sts_dev,
              "--save_best", "valid_loss"))
    evals = read_metrics(run, EVAL)
    assert [r["step"] for r in evals] == [2, 4, 5]
    for record in evals:
        assert record["kind"] == EVAL
        assert record["valid_loss"] == pytest.approx(
            record["valid_loss_gen"] + record["valid_loss_sim"])
        assert record["valid_loss_gen"] > 0 and record["valid_loss_sim"] > 0
        assert -1 <= record["sts_BQ"] <= 1 and -1 <= record["sts_LCQMC"] <= 1
    assert len(read_metrics(run)) == 5

    best = json.loads((run / "best" / "best.json").read_text())
    winner = min(evals, key=lambda r: r["valid_loss"])
    assert best == {"metric": "valid_loss", "value": winner["valid_loss"],
                    "step": winner["step"]}
    assert RoFormerSim.from_pretrained(run / "best").config.hidden_size == 32
    assert (run / "metrics.png").read_bytes()[:8] == PNG_MAGIC

    out = plot_main([str(run), "--out", str(tmp_path / "again.png")])
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_eval_records_are_reproduced_by_resume(corpus, vocab, tmp_path):
    extra = ("--eval_every", 2, "--save_best", "valid_loss_sim")
    main(args(corpus, vocab, tmp_path / "full", "--steps", 4, *extra))
    main(args(corpus, vocab, tmp_path / "split", "--steps", 2, *extra))
    main(args(corpus, vocab, tmp_path / "split", "--steps", 4, "--resume", *extra))
    got, expected = (read_metrics(tmp_path / name, None) for name in ("split", "full"))
    assert [r["step"] for r in got if r.get("kind") == EVAL] == [2, 4]
    for g, e in zip(got, expected, strict=True):
        g.pop("tokens_per_s", None), e.pop("tokens_per_s", None)
        assert g == pytest.approx(e, abs=1e-6)
    assert ((tmp_path / "split" / "best" / "best.json").read_text()
            == (tmp_path / "full" / "best" / "best.json").read_text())


@pytest.mark.parametrize("extra, message", [
    (["--eval_every", "2", "--save_best", "sts_LCQMC"], "--save_best sts_LCQMC: not one of"),
    (["--save_best", "valid_loss"], "need --eval_every"),
    (["--eval_every", "2", "--sts_dev", "nosuch"], "--sts_dev nosuch does not exist"),
])
def test_bad_eval_options_are_refused(corpus, vocab, tmp_path, extra, message):
    with pytest.raises(SystemExit, match=message):
        main(args(corpus, vocab, tmp_path / "run", "--steps", 1, *extra))
    assert not (tmp_path / "run").exists()


def test_eval_needs_a_valid_split(corpus, vocab, tmp_path):
    with pytest.raises(SystemExit, match="the valid split is read from a corpus _manifest"):
        main(args(corpus / "train-*.parquet", vocab, tmp_path / "run", "--steps", 1,
                  "--eval_every", 1))
    assert not (tmp_path / "run").exists()


def test_plot_of_a_run_without_records_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no training records"):
        plot_main([str(tmp_path)])


def test_plot_of_records_missing_a_curve_leaves_a_gap(tmp_path):
    """Probe: a training record without ``loss_gen`` or ``lr`` (hand-edited, older runs) made
    ``model.plot`` fail with a ``KeyError`` traceback; that curve has a gap instead."""
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5, "loss_gen": 1.0, "loss_sim": 0.5, '
        '"lr": 0.001}\n', encoding="utf-8")
    target = plot_main([str(tmp_path), "--out", str(tmp_path / "p.png")])
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
