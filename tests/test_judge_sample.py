import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.hashing import content_hash
from pipelines.judge_sample import draw_sample, main
from pipelines.schema import PAIR_SCHEMA
from similarity.calibrate import JudgedPair, read_judged, write_judged


@pytest.fixture
def pairs_dir(tmp_path):
    """Two shards of 20 hand-made qa pairs with scores 0.00, 0.05, ..., 0.95."""
    rows = [{"text_a": f"句{k:02d}一", "text_b": f"句{k:02d}二", "score": k / 20, "scheme": "qa",
             "group_id": f"g{k}"} for k in range(20)]
    folder = tmp_path / "qa"
    folder.mkdir()
    for part in range(2):
        table = pa.Table.from_pylist(rows[part::2], schema=PAIR_SCHEMA)
        pq.write_table(table, folder / f"pairs-{part:05d}-of-00002.parquet")
    return folder


def test_draw_sample_is_the_smallest_hashes_in_range(pairs_dir):
    sample = draw_sample(str(pairs_dir), n=3, seed=7, low=0.2, high=0.6)
    in_range = [(f"句{k:02d}一", f"句{k:02d}二") for k in range(4, 12)]
    expected = sorted(in_range, key=lambda key: content_hash(7, "judge", *key))[:3]
    assert sorted(pair.key for pair in sample) == sorted(expected)
    assert all(0.2 <= pair.score < 0.6 and pair.label == "" for pair in sample)
    assert [pair.score for pair in sample] == sorted(pair.score for pair in sample)
    assert draw_sample(str(pairs_dir), n=3, seed=7, low=0.2, high=0.6) == sample
    assert {p.key for p in sample} <= {p.key for p in draw_sample(str(pairs_dir), 5, 7, 0.2, 0.6)}
    assert draw_sample(str(pairs_dir), n=3, seed=8, low=0.2, high=0.6) != sample


def test_draw_sample_leaves_out_judged_pairs(pairs_dir, tmp_path):
    judged = tmp_path / "judged.tsv"
    # judged with the texts swapped: the key is the unordered pair
    write_judged(judged, [JudgedPair("句05二", "句05一", 0.25, "qa", "P", "")])
    sample = draw_sample(str(pairs_dir), n=20, seed=0, low=0.2, high=0.3, exclude=[judged])
    assert [pair.key for pair in sample] == [("句04一", "句04二")]


def test_cli_writes_a_tsv_ready_to_judge(pairs_dir, tmp_path, capsys):
    out = tmp_path / "sample.tsv"
    assert main([str(pairs_dir), "--n", "4", "--min", "0.5", "--out", str(out)]) == 0
    rows = read_judged(out, unlabelled=True)
    assert len(rows) == 4 and all(row.score >= 0.5 and row.scheme == "qa" for row in rows)
    assert "wrote 4 pairs" in capsys.readouterr().out
    assert main([str(pairs_dir), "--min", "2", "--out", str(out)]) == 2
    assert "no pairs with 2.0 <= score" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(pairs_dir), "--min", "0.5", "--max", "0.4", "--out", str(out)])
    with pytest.raises(SystemExit):
        main([str(pairs_dir), "--n", "0", "--out", str(out)])
