"""Faults of the model CLIs (generate, encode, evaluate; issue 13 item 12): bad labels, invalid
UTF-8, long lines, output paths, user errors as one line with an exit code."""

import json
import logging
import shutil

import numpy as np
import pytest

from model import encode, evaluate, generate

pytestmark = pytest.mark.usefixtures("single_thread")

PAIRS = ["今天天气很好\t今天天气不错\t1", "我想买手机\t手机多少钱\t0", "怎么还款\t如何还款\t1",
         "电影好看吗\t这部电影怎么样\t1", "他在哪里\t明天下雨吗\t0"]
FAST_GENERATE = ["--n", "2", "--max_len", "4"]


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _cli_args(cli, checkpoint, path, tmp_path):
    """Arguments running ``cli`` on the input file ``path``."""
    if cli is evaluate:
        return ["--checkpoint", str(checkpoint), "--sts", str(path), "--whitening", "none"]
    if cli is encode:
        return ["--checkpoint", str(checkpoint), "--input", str(path),
                "--out", str(tmp_path / "v.npy")]
    return ["--checkpoint", str(checkpoint), "--input", str(path), *FAST_GENERATE]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_non_finite_labels_are_rejected_with_a_count_and_out_is_strict_json(
        tiny_checkpoint, tmp_path, capsys):
    path = tmp_path / "T.data"
    bad = ["好吗\t好的\tnan", "是吗\t是的\tinf", "行吗\t行的\tyes"]
    path.write_text("\n".join(PAIRS[:2] + bad + PAIRS[2:]) + "\n", encoding="utf-8")
    out = tmp_path / "results.json"
    assert evaluate.main(["--checkpoint", str(tiny_checkpoint), "--sts", str(path),
                          "--out", str(out)]) == 0
    assert f"{path}: 3 line(s) rejected, label not a finite number (lines 3, 4, 5)" in (
        capsys.readouterr().err)
    task = _strict_json(out.read_text(encoding="utf-8"))["T"]
    assert (task["pairs"], task["rejected"]) == (5, 3)
    assert all(np.isfinite(task["pooler"][view]["spearman"]) for view in task["pooler"])


def test_undefined_spearman_is_null_in_strict_json(tiny_checkpoint, tmp_path):
    path = tmp_path / "SAME.data"
    path.write_text("".join(p.rsplit("\t", 1)[0] + "\t1\n" for p in PAIRS), encoding="utf-8")
    out = tmp_path / "results.json"
    assert evaluate.main(["--checkpoint", str(tiny_checkpoint), "--sts", str(path),
                          "--whitening", "none", "--out", str(out)]) == 0
    task = _strict_json(out.read_text(encoding="utf-8"))["SAME"]
    assert task["char-jaccard"]["spearman"] is None and task["pooler"]["raw"]["spearman"] is None


@pytest.mark.parametrize("cli", [encode, generate, evaluate], ids=lambda m: m.__name__)
def test_invalid_utf8_is_one_line_naming_file_and_line(cli, tiny_checkpoint, tmp_path, capsys):
    path = tmp_path / "bad.data"
    path.write_bytes(PAIRS[0].encode() + b"\n" + "坏".encode()[:2] + b"\t\xff\t1\n")
    assert cli.main(_cli_args(cli, tiny_checkpoint, path, tmp_path)) == 2
    assert f"{path}:2: invalid UTF-8 (byte 0xe5" in _error_line(capsys)


@pytest.mark.parametrize("cli", [encode, generate, evaluate], ids=lambda m: m.__name__)
def test_long_lines_are_truncated_with_a_warning(cli, tiny_checkpoint, tmp_path, caplog):
    path = tmp_path / "long.data"
    long = "长" * 10_000
    path.write_text(f"{PAIRS[0]}\n{long}\t{long}短\t0\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="model.encode"):
        assert cli.main(_cli_args(cli, tiny_checkpoint, path, tmp_path)) == 0
    warnings = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    noun = "long sentences" if cli is evaluate else "texts"
    count = "2 of 4" if cli is evaluate else "1 of 2"
    assert warnings[0].startswith(f"{count} {noun} longer than maxlen=64 tokens")
    assert f"{noun}[1], longest" in warnings[0] and len(warnings) == 1


def test_encode_reports_the_npy_path_it_writes(tiny_checkpoint, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("你好\n再见\n", encoding="utf-8")
    assert encode.main(["--checkpoint", str(tiny_checkpoint), "--input", str(source),
                        "--out", str(tmp_path / "vecs")]) == 0
    assert capsys.readouterr().err.rstrip().endswith(f"to {tmp_path / 'vecs.npy'}")
    assert np.load(tmp_path / "vecs.npy").shape == (2, 32)


@pytest.mark.parametrize(("cli", "damage", "options", "message"), [
    (encode, None, ["--input", "{tmp}/absent.txt"], "No such file or directory"),
    (evaluate, "absent", [], "is not a directory"),
    (generate, "model.safetensors", [], "unreadable config.json or weights, corrupt or not"),
    (encode, "config.json", [], "unreadable config.json or weights"),
    (evaluate, "vocab.txt", [], "unreadable vocab.txt"),
    (generate, None, ["--top_p", "2"], "top_p must be in (0, 1], got 2.0"),
    (encode, None, ["--maxlen", "1"], "maxlen must be at least 2, got 1"),
    (evaluate, None, ["--device", "nosuch"], "--device 'nosuch' is not a device"),
    (evaluate, None, ["--out", "{tmp}/nowhere/x.json"], "nowhere does not exist"),
    (generate, None, ["--output", "{tmp}"], "is a directory, not a file"),
], ids=["missing-input", "missing-checkpoint", "truncated-weights", "bad-config", "bad-vocab",
        "top_p", "maxlen", "device", "out-folder", "output-is-folder"])
def test_user_errors_are_one_line_with_exit_code_2(cli, damage, options, message,
                                                    tiny_checkpoint, tmp_path, capsys):
    """Each fails before any work (the --out / --output checks before reading)."""
    source = tmp_path / "in.data"
    source.write_text("\n".join(PAIRS) + "\n", encoding="utf-8")
    checkpoint = tiny_checkpoint
    if damage == "absent":
        checkpoint = tmp_path / "absent"
    elif damage is not None:
        checkpoint = tmp_path / "damaged"
        shutil.copytree(tiny_checkpoint, checkpoint)
        content = (checkpoint / damage).read_bytes()
        (checkpoint / damage).write_bytes(content[:len(content) // 2] + b"\xff")
    args = [*_cli_args(cli, checkpoint, source, tmp_path),
            *(option.format(tmp=tmp_path) for option in options)]
    assert cli.main(args) == 2
    assert message in _error_line(capsys)


def test_runtime_failure_is_one_line_with_exit_code_1(tiny_checkpoint, tmp_path, capsys,
                                                      monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    source = tmp_path / "in.txt"
    source.write_text("你好\n", encoding="utf-8")
    assert encode.main(["--checkpoint", str(tiny_checkpoint), "--input", str(source),
                        "--out", str(tmp_path / "v.npy")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "error: OSError: [Errno 28] No space left on device"


@pytest.mark.parametrize("cli", [encode, generate, evaluate], ids=lambda m: m.__name__)
def test_mistyped_options_exit_2_naming_the_option(cli, tiny_checkpoint, tmp_path, capsys):
    """A check, not a fix: argparse already refuses unknown options in these three CLIs."""
    source = tmp_path / "in.data"
    source.write_text(PAIRS[0] + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*_cli_args(cli, tiny_checkpoint, source, tmp_path), "--ouptut", "x"])
    assert exit_info.value.code == 2
    assert "error: unrecognized arguments: --ouptut" in capsys.readouterr().err


def test_a_byte_order_mark_is_not_part_of_the_first_sentence(tmp_path):
    """Probe: a file saved with a UTF-8 BOM (and CRLF ends) gave ``\\ufeff今天天气很好`` as the
    first sentence in ``generate``'s output, ``encode``'s rows and ``evaluate``'s pairs."""
    from model.cli import text_lines
    from model.sts import read_sts

    lines = tmp_path / "lines.txt"
    lines.write_bytes("\ufeff今天天气很好\r\n明天会下雨吗\r\n".encode())
    assert text_lines(lines) == ["今天天气很好", "明天会下雨吗"]
    sts = tmp_path / "bom.tsv"
    sts.write_bytes("\ufeff今天\t明天\t1\r\n天气\t下雨\t0\r\n".encode())
    task = read_sts(sts)
    assert (task.text_a, task.text_b, task.labels.tolist()) == (["今天", "天气"], ["明天", "下雨"],
                                                                [1.0, 0.0])


def test_undefined_spearman_is_nan_without_a_scipy_warning():
    """Probe: constant labels or cosines printed scipy's ``ConstantInputWarning`` with a source
    line of ``model/sts.py`` on stderr; ρ is NaN (null in ``--out``) and nothing is printed."""
    import warnings

    from model.sts import spearman

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for labels, scores in (([1.0, 1.0, 1.0], [0.1, 0.5, 0.9]), ([0.0, 1.0], [0.3, 0.3]),
                               ([1.0], [0.2])):
            assert np.isnan(spearman(np.array(labels), np.array(scores)))
        assert spearman(np.array([0.0, 1.0, 2.0]), np.array([0.1, 0.3, 0.2])) == 0.5


@pytest.mark.parametrize("cli", [encode, generate, evaluate], ids=lambda m: m.__name__)
def test_a_vocab_of_another_size_than_the_weights_is_refused(cli, tiny_checkpoint, tmp_path,
                                                             capsys):
    """Probe: a checkpoint whose vocab.txt is shorter than its embeddings ran: ``generate``
    failed with an ``IndexError`` traceback, ``encode`` wrote vectors of [UNK]s, rc 0."""
    checkpoint = tmp_path / "mixed"
    shutil.copytree(tiny_checkpoint, checkpoint)
    tokens = (checkpoint / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (checkpoint / "vocab.txt").write_text("\n".join(tokens[:200]) + "\n", encoding="utf-8")
    source = tmp_path / "in.data"
    source.write_text("\n".join(PAIRS) + "\n", encoding="utf-8")
    assert cli.main(_cli_args(cli, checkpoint, source, tmp_path)) == 2
    assert (f"--checkpoint {checkpoint}: vocab.txt has 200 tokens, config.json vocab_size is "
            f"{len(tokens):,}") in _error_line(capsys)
