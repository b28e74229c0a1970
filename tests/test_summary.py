"""Counters collected from a real run, accounting, and the printed summary."""

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from pipelines.io import NAMESPACE
from pipelines.summary import accounting, build_summary, collect_counters, format_summary


def _count(x, name):
    Metrics.counter(NAMESPACE, name).inc(x)
    return x


def test_collect_counters_sums_a_counter_over_steps():
    p = BeamTestPipeline(runner="FnApiRunner")
    numbers = p | "Create" >> beam.Create([1, 2, 3])
    numbers | "CountA" >> beam.Map(_count, "records_read")
    numbers | "CountB" >> beam.Map(_count, "records_read")
    numbers | "CountC" >> beam.Map(_count, "rejected_blank_line")
    result = p.run()
    result.wait_until_finish()
    assert collect_counters(result) == {"records_read": 12, "rejected_blank_line": 6}


def test_accounting_and_summary_text():
    counters = {"records_read": 10, "records_accepted": 7, "rejected_invalid_json": 2,
                "rejected_too_large": 1, "sentences_dropped_too_short": 4, "pairs_written": 5}
    assert accounting(counters) == {"records_read": 10, "accepted": 7, "rejected": 3,
                                    "balanced": True}
    settings = {"scheme": "qa", "low": 0.4, "high": 0.9, "runner": "DirectRunner",
                "input": "in.jsonl"}
    summary = build_summary("qa_pairs", settings, {}, counters, "multiset", 1.234,
                            {"pairs": ["o/pairs-00000-of-00001.parquet"], "rejected": [],
                             "summary": "o/_summary.json"})
    assert summary["rejected_by_reason"] == {"invalid_json": 2, "too_large": 1}
    assert summary["sentences_dropped_by_rule"] == {"too_short": 4}
    assert summary["thresholds"] == {"low": 0.4, "high": 0.9} and summary["variant"] == "multiset"
    text = format_summary(summary, "answers")
    assert "10 read = 7 accepted + 3 rejected (ok)" in text
    assert "invalid_json 2, too_large 1" in text and "5 written" in text
    assert "over the group cap dropped, 0 duplicates" in text
    skipped = dict(summary, counters=dict(counters, pairs_skipped_by_group_cap=4_498_300))
    assert "over the group cap dropped (4,498,300 more never scored), 0 dup" in format_summary(
        skipped)
    assert "MISMATCH" in format_summary(dict(summary, accounting=dict(
        summary["accounting"], balanced=False)))
