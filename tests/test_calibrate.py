import pytest

from similarity.calibrate import THRESHOLDS, main, read_pairs, roc_auc, threshold_table


def test_roc_auc_hand_computed():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert roc_auc([0.5, 0.5], [False, True]) == 0.5
    assert roc_auc([0.9, 0.1], [True, False]) == 1.0
    with pytest.raises(ValueError, match="both"):
        roc_auc([0.1, 0.2], [True, True])


def test_threshold_table_hand_computed():
    rows = threshold_table("set", [0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    assert [row.threshold for row in rows] == list(THRESHOLDS)
    at_035 = rows[THRESHOLDS.index(0.35)]
    assert (at_035.admitted, at_035.precision, at_035.recall) == (3, 2 / 3, 1.0)
    at_05 = rows[THRESHOLDS.index(0.5)]
    assert (at_05.admitted, at_05.precision, at_05.recall) == (1, 1.0, 0.5)


def test_read_pairs_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("你好\t您好\t1\n只有两列\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:2: expected 3"):
        read_pairs(path, 1)
    path.write_text("你好\t您好\tyes\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:1: label 'yes'"):
        read_pairs(path, 1)


def test_cli_on_a_shared_sts_file_writes_table_and_png(shared_data, tmp_path, capsys):
    aucs = main(["--pairs", str(shared_data / "sts" / "PAWSX.valid.data"), "--out", str(tmp_path)])
    assert set(aucs) == {"set", "multiset", "bigram", "uni_bigram"}
    assert all(0.0 <= auc <= 1.0 for auc in aucs.values())
    assert (tmp_path / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (tmp_path / "calibration.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 4 * len(THRESHOLDS)
    out = capsys.readouterr().out
    assert "2000 pairs, 853 similar" in out and "ROC-AUC" in out


def test_cli_rejects_unknown_variant_and_missing_file(shared_data, tmp_path):
    with pytest.raises(SystemExit):
        main(["--pairs", str(shared_data / "sts" / "PAWSX.valid.data"), "--variants", "cosine"])
    with pytest.raises(SystemExit):
        main(["--pairs", str(tmp_path / "missing.tsv")])


@pytest.mark.parametrize("data, message", [
    (b"\xe4\xbd\xa0\t\xe5\xa5\xbd\t1\ncaf\xe9\tb\t0\n", "bad.tsv:2: invalid UTF-8"),
    (b"", "bad.tsv: no pairs"),
    ("你好\t您好\t1\n好\t坏\tnan\n".encode(), "bad.tsv:2: label 'nan' is not a finite number"),
    ("你好\t您好\t1\n好的\t好\t1\n".encode(), "all 2 pairs are similar at --positive-min 1"),
])
def test_cli_bad_pair_files_are_one_line_naming_the_file(tmp_path, capsys, data, message):
    """Probe: these were tracebacks (UnicodeDecodeError without the file, "ROC-AUC needs both"
    without it) or, for ``nan``, a pair silently counted as dissimilar."""
    path = tmp_path / "bad.tsv"
    path.write_bytes(data)
    with pytest.raises(SystemExit) as exit_info:
        main(["--pairs", str(path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: --pairs: {path}" in err and message in err
    assert not (tmp_path / "out").exists()


def test_cli_out_an_existing_file_is_refused_before_reading(tmp_path, capsys):
    pairs, out = tmp_path / "p.tsv", tmp_path / "out.txt"
    pairs.write_text("你好\t您好\t1\n好\t坏\t0\n", encoding="utf-8")
    out.write_text("keep")
    with pytest.raises(SystemExit):
        main(["--pairs", str(pairs), "--out", str(out)])
    assert f"--out: {out} is an existing file" in capsys.readouterr().err
    assert out.read_text() == "keep"
