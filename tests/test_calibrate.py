import pytest

from similarity.calibrate import (
    THRESHOLDS,
    BandGoal,
    JudgedPair,
    band_counts,
    best_bands,
    bucket_counts,
    main,
    pair_key,
    read_judged,
    read_pairs,
    roc_auc,
    threshold_table,
    write_judged,
)

HEADER = "text_a\ttext_b\tscore\tscheme\tlabel\treason\n"
# Hand-made qa rows (width 0.1 buckets):
#   [0.1, 0.2): N J        [0.2, 0.3): P R N      [0.3, 0.4): P P R R (0.30 sits on the edge)
#   [0.4, 0.5): P D        [0.5, 0.6): D
# plus two question rows that --scheme qa must leave out.
JUDGED_ROWS = [
    (0.15, "N"), (0.18, "J"), (0.22, "P"), (0.25, "R"), (0.29, "N"), (0.30, "P"), (0.35, "P"),
    (0.38, "R"), (0.39, "R"), (0.45, "P"), (0.47, "D"), (0.55, "D"),
]


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


def _judged(rows=JUDGED_ROWS, scheme="qa") -> list[JudgedPair]:
    return [JudgedPair(f"甲{k}", f"乙{k}", value, scheme, label, "理由")
            for k, (value, label) in enumerate(rows)]


@pytest.fixture
def judged_tsv(tmp_path):
    path = tmp_path / "qa-hand.tsv"
    write_judged(path, _judged() + _judged([(0.5, "P"), (0.6, "P")], "question")[:2])
    return path


def test_pair_key_is_order_free():
    assert pair_key("乙", "甲") == pair_key("甲", "乙") == ("乙", "甲")


def test_judged_tsv_round_trip(tmp_path):
    path = tmp_path / "j.tsv"
    write_judged(path, _judged())
    assert read_judged(path) == _judged()
    path.write_text(HEADER + "甲\t乙\t0.5\tqa\t\t\n", encoding="utf-8")
    assert read_judged(path, unlabelled=True)[0].label == ""
    with pytest.raises(ValueError, match="tab or newline"):
        write_judged(path, [JudgedPair("甲\t", "乙", 0.5, "qa", "P", "")])


@pytest.mark.parametrize(
    "text, error",
    [
        (HEADER + "甲\t乙\t0.5\tqa\tX\t理由\n", r"j.tsv:2: label 'X'"),
        (HEADER + "甲\t乙\t0.5\tqa\t\t\n", r"j.tsv:2: label ''"),
        (HEADER + "甲\t乙\thigh\tqa\tP\t理由\n", r"j.tsv:2: score 'high'"),
        (HEADER + "甲\t乙\t0.5\tqa\tP\n", r"j.tsv:2: expected 6"),
        ("a\tb\tscore\n", r"j.tsv:1: header"),
    ],
)
def test_read_judged_names_the_bad_line(tmp_path, text, error):
    path = tmp_path / "j.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        read_judged(path)


def test_buckets_hand_computed():
    buckets = bucket_counts(_judged(), 0.1)
    assert [(b.low, b.high) for b in buckets] == [(0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5),
                                                  (0.5, 0.6)]
    assert [dict(b.counts) for b in buckets] == [
        {"N": 1, "J": 1}, {"P": 1, "R": 1, "N": 1}, {"P": 2, "R": 2}, {"P": 1, "D": 1}, {"D": 1}
    ]
    assert [b.similar for b in buckets] == [0, 2, 4, 1, 0]
    assert buckets[1].precision == 2 / 3 and buckets[3].share("D") == 0.5
    gap = bucket_counts(_judged([(0.05, "P"), (0.31, "N")]), 0.1)
    assert [b.total for b in gap] == [1, 0, 0, 1]


def test_best_band_hand_computed():
    bands = band_counts(bucket_counts(_judged(), 0.1))
    assert len(bands) == 5 * 6 // 2
    # P+R / judged per band: [0.2, 0.4) 6/7, [0.3, 0.5) 5/6, [0.3, 0.4) 4/4, [0.2, 0.5) 7/9
    # (D 1/9), [0.2, 0.6) 7/10, [0.1, 0.5) 7/11; the rest are below 0.7.
    best = best_bands(bands, BandGoal(target=0.8, min_pairs=1))
    assert [(b.low, b.high, b.similar, b.total) for b in best] == [
        (0.2, 0.4, 6, 7), (0.3, 0.5, 5, 6), (0.3, 0.4, 4, 4)]
    wider = best_bands(bands, BandGoal(target=0.75, min_pairs=1))
    assert (wider[0].low, wider[0].high, wider[0].similar) == (0.2, 0.5, 7)
    no_copies = best_bands(bands, BandGoal(target=0.75, max_near_copy=0.1, min_pairs=1))
    assert (no_copies[0].low, no_copies[0].high) == (0.2, 0.4)
    with_junk = next(b for b in bands if (b.low, b.high) == (0.1, 0.4))  # J 1 of 9
    assert not BandGoal(target=0.0, max_junk=0.1, min_pairs=1).met_by(with_junk)
    assert BandGoal(target=0.0, max_junk=0.12, min_pairs=1).met_by(with_junk)
    # 7 P+R each: the more precise [0.2, 0.5) first, then [0.2, 0.6) (0.7)
    loose = best_bands(bands, BandGoal(target=0.7, min_pairs=1))
    assert [(b.low, b.high) for b in loose[:2]] == [(0.2, 0.5), (0.2, 0.6)]
    assert best_bands(bands, BandGoal(target=0.8, min_pairs=8)) == []
    supported = best_bands(bands, BandGoal(target=0.8, min_pairs=7))
    assert [(b.low, b.high) for b in supported] == [(0.2, 0.4)]


def test_cli_judged_writes_tables_and_png(judged_tsv, tmp_path, capsys):
    out = tmp_path / "cal"
    best = main(["--judged", str(judged_tsv), "--scheme", "qa", "--width", "0.1",
                 "--min-pairs", "1", "--out", str(out)])
    assert set(best) == {"qa"}
    assert (best["qa"].low, best["qa"].high, best["qa"].similar) == (0.2, 0.4, 6)
    assert (out / "judged-qa.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    buckets = (out / "judged-qa-buckets.tsv").read_text(encoding="utf-8").splitlines()
    assert len(buckets) == 1 + 5 and buckets[3].split("\t")[:8] == [
        "0.30", "0.40", "4", "2", "2", "0", "0", "0"]
    bands = (out / "judged-qa-bands.tsv").read_text(encoding="utf-8").splitlines()
    assert len(bands) == 1 + 15
    text = capsys.readouterr().out
    assert "qa: 12 judged pairs" in text and "best band: [0.20, 0.40): 6 P+R of 7" in text
    both = main(["--judged", str(judged_tsv), "--width", "0.1"])
    assert both == {"qa": None, "question": None}
    text = capsys.readouterr().out
    assert "most precise band with >= 10 pairs: [0.20, 0.60): 7 P+R of 10" in text


def test_cli_judged_rejects_conflicts_and_unknown_scheme(judged_tsv, tmp_path):
    other = tmp_path / "other.tsv"
    first = _judged()[0]
    write_judged(other, [JudgedPair(first.text_b, first.text_a, 0.15, "qa", "P", "另一判")])
    with pytest.raises(SystemExit):
        main(["--judged", str(judged_tsv), str(other)])
    with pytest.raises(SystemExit):
        main(["--judged", str(judged_tsv), "--scheme", "doc"])
    with pytest.raises(SystemExit):
        main(["--judged", str(tmp_path / "missing.tsv")])
    with pytest.raises(SystemExit):
        main(["--judged", str(judged_tsv), "--pairs", str(judged_tsv)])


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
