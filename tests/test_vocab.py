"""Char vocabulary builder: layout of the shared vocab files, frequency order with deterministic
ties, full coverage of the data it was built from, bad inputs."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.tokenizer import Tokenizer
from model.vocab import SPECIAL_TOKENS, build_vocab, main


def write_pairs(path, pairs):
    table = pa.table({"text_a": [a for a, _ in pairs], "text_b": [b for _, b in pairs]},
                     schema=pa.schema([("text_a", pa.string()), ("text_b", pa.string())]))
    pq.write_table(table, path)


@pytest.fixture
def shards(tmp_path, shared_data):
    pairs = []
    for name in ("LCQMC", "PAWSX"):
        lines = (shared_data / "sts" / f"{name}.valid.data").read_text(encoding="utf-8")
        pairs += [tuple(line.split("\t")[:2]) for line in lines.splitlines()[:600]]
    write_pairs(tmp_path / "pairs-0.parquet", pairs[:500])
    write_pairs(tmp_path / "pairs-1.parquet", [])
    write_pairs(tmp_path / "pairs-2.parquet", pairs[500:])
    return tmp_path, pairs


def test_special_tokens_match_the_shared_vocab_files(shared_data):
    for name in ("roformer-sim-char", "bert-base-chinese"):
        lines = (shared_data / "vocab" / name / "vocab.txt").read_text(encoding="utf-8")
        assert lines.splitlines()[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS


def test_built_vocab_covers_its_data(shards):
    folder, pairs = shards
    vocab = build_vocab(str(folder / "pairs-*.parquet"), size=100000)
    assert vocab[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS
    assert len(vocab) == len(set(vocab)) < 100000
    path = folder / "vocab.txt"
    path.write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    tok = Tokenizer(path)
    assert any("##" in t for t in vocab), "PAWSX Latin words give ## pieces"
    for a, b in pairs:
        assert tok.unk_id not in tok.text_ids(a) + tok.text_ids(b)


def test_frequency_order_and_ties(tmp_path):
    write_pairs(tmp_path / "p.parquet", [("好好好乙甲", "Ab 好"), ("乙甲", "丙")])
    vocab = build_vocab(tmp_path / "p.parquet", size=200)
    # 好 4, 乙 2, 甲 2, a 1, ##b 1, 丙 1 (ties in code-point order: "##b" < "a" < "丙")
    assert vocab[len(SPECIAL_TOKENS):] == ["好", "乙", "甲", "##b", "a", "丙"]
    assert build_vocab(tmp_path / "p.parquet", size=len(SPECIAL_TOKENS) + 2)[-2:] == ["好", "乙"]


def test_cli_writes_the_vocab(shards, capsys):
    folder, _ = shards
    out = folder / "v.txt"
    main(["--data", str(folder / "pairs-*.parquet"), "--size", "500", "--out", str(out)])
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 500 and lines[:106] == SPECIAL_TOKENS
    assert "wrote 500 tokens" in capsys.readouterr().out


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="matches no files"):
        build_vocab(str(tmp_path / "none-*.parquet"))
    pq.write_table(pa.table({"text_a": ["好"], "other": ["坏"]}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad.parquet: column 'text_b' missing"):
        build_vocab(tmp_path / "bad.parquet")
    write_pairs(tmp_path / "empty.parquet", [])
    with pytest.raises(ValueError, match="no rows"):
        build_vocab(tmp_path / "empty.parquet")
    with pytest.raises(ValueError, match="size"):
        build_vocab(tmp_path / "bad.parquet", size=106)
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path / "none-*.parquet")])


def test_cli_out_in_a_missing_folder_or_a_folder_is_one_line(shards, capsys):
    """Probe: both were tracebacks (FileNotFoundError, IsADirectoryError) after counting."""
    folder, _ = shards
    for out, problem in ((folder / "nodir" / "v.txt", "does not exist"),
                         (folder, "is a directory")):
        with pytest.raises(SystemExit) as exit_info:
            main(["--data", str(folder / "pairs-*.parquet"), "--size", "500", "--out", str(out)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"error: --out {out}" in err and problem in err and "counting" not in err
