"""Option parsing, defaults, validation and the local runner choice."""

import pytest
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

from pipelines.options import PairSettings, make_pipeline, parse_options
from similarity import LSH_CUTOFF, SCHEMES


def settings(*argv, scheme="qa"):
    return PairSettings.from_options(parse_options(list(argv), "test"), scheme, "sample.jsonl",
                                     scheme == "qa")


def test_defaults_come_from_the_scheme_and_the_bundled_sample():
    qa, doc = settings(), settings(scheme="doc")
    assert (qa.input, qa.output, qa.codec, qa.max_record_bytes) == (
        "sample.jsonl", "out/qa", "zstd", 1 << 20)
    assert (qa.scoring.low, qa.scoring.high) == (SCHEMES["qa"].low, SCHEMES["qa"].high)
    assert (doc.scoring.low, doc.output) == (SCHEMES["doc"].low, "out/doc")
    assert qa.scoring.cross_text_only and not doc.scoring.cross_text_only
    assert qa.scoring.lsh_cutoff == LSH_CUTOFF
    flat = qa.as_dict()
    assert flat["low"] == qa.scoring.low and flat["input"] == "sample.jsonl"
    assert "scoring" not in flat


def test_explicit_values_and_beam_options_pass_through():
    s = settings("--input=a/*.jsonl", "--output=o", "--low=0.2", "--high=0.8", "--max_len=32",
                 "--num_shards=0", "--codec=snappy", "--direct_num_workers=2")
    assert (s.input, s.output, s.scoring.low, s.scoring.high, s.scoring.max_len) == (
        "a/*.jsonl", "o", 0.2, 0.8, 32)
    assert (s.num_shards, s.codec) == (0, "snappy")


@pytest.mark.parametrize("argv", [["--low=0.5", "--high=0.5"], ["--max_len=0"],
                                  ["--fanout_block=0"], ["--max_record_bytes=0"],
                                  ["--num_shards=-2"]])
def test_bad_values_raise_value_errors_naming_the_option(argv):
    with pytest.raises(ValueError, match=argv[0].split("=")[0]):
        settings(*argv)


def test_malformed_values_and_unknown_choices_exit_with_usage():
    for argv in (["--low", "abc"], ["--codec", "gzip"], ["--input_format", "csv"],
                 ["--variant=cosine"]):
        with pytest.raises(SystemExit):
            parse_options(argv, "test")


def test_direct_runner_runs_on_the_fn_api_runner_with_worker_options():
    options = parse_options(["--runner=DirectRunner", "--direct_num_workers=2",
                             "--direct_running_mode=multi_processing"], "test")
    pipeline = make_pipeline(options)
    assert isinstance(pipeline.runner, FnApiRunner)
    assert pipeline.options.view_as(DirectOptions).direct_num_workers == 2
    assert isinstance(make_pipeline(parse_options([], "test")).runner, FnApiRunner)
