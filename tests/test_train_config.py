"""TrainConfig: the CLI is built from it, args.json round-trips it, resume changes are listed."""

from dataclasses import fields
from pathlib import Path

import pytest

from model.train_config import RESUME_MAY_CHANGE, TrainConfig, build_parser, parse_config


def test_cli_fills_every_field_and_args_json_round_trips(tmp_path):
    config = parse_config(["--data", "a/*.parquet", "b", "--output", "runs/x", "--stage", "2",
                           "--teacher", "t", "--precision", "bf16", "--compile",
                           "--eval_every", "5", "--save_best", "valid_loss"])
    assert config.data == ["a/*.parquet", "b"] and config.output == Path("runs/x")
    assert config.teacher == Path("t") and config.init is None and config.compile
    assert (config.stage, config.eval_every, config.batch_size) == (2, 5, 96)
    config.write_json(tmp_path / "args.json")
    assert TrainConfig.read_json(tmp_path / "args.json") == config
    flags = {a.dest for a in build_parser()._actions} - {"help"}
    assert flags == {f.name for f in fields(TrainConfig)}


def test_required_and_unknown_options_exit_2(capsys):
    with pytest.raises(SystemExit) as err:
        parse_config(["--output", "x"])
    assert err.value.code == 2 and "--data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        parse_config(["--data", "x", "--output", "x", "--bacth_size", "8"])
    assert err.value.code == 2


def test_changed_options_on_resume():
    before = TrainConfig(["d"], Path("o"), config="tiny")
    after = TrainConfig(["d"], Path("o"), config="small", steps=50, resume=True, lr=2e-5)
    assert after.changed_on_resume(before) == ["--config tiny → small", "--lr 1e-05 → 2e-05"]
    assert {"steps", "resume"} <= RESUME_MAY_CHANGE


@pytest.mark.parametrize("options, world_size, message", [
    ({"batch_size": 12}, 8, "must split into 8 rank"),
    ({"batch_size": 12}, 4, "must split into 4 rank"),  # 3 rows per rank: odd
    ({"batch_size": 16, "grad_accum": 3}, 2, "not divisible by --grad_accum 3"),
])
def test_global_batch_must_split_into_ranks(options, world_size, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(["d"], Path("o"), **options).check_world(world_size)
    assert TrainConfig(["d"], Path("o"), batch_size=96, grad_accum=2).check_world(4) == 24
