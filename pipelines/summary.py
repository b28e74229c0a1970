"""End-of-run summary: Beam counters, accounting, settings → ``_summary.json`` and a printout."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult

import pipelines
from pipelines.io import NAMESPACE

REJECTED_PREFIX = "rejected_"
DROPPED_PREFIX = "sentences_dropped_"
PAIRS_DROPPED_PREFIX = "pairs_dropped_"


def collect_counters(result: PipelineResult, namespace: str = NAMESPACE) -> dict[str, int]:
    """Counter name → total over all steps (committed values; attempted where not reported)."""
    query = result.metrics().query(MetricsFilter().with_namespace(namespace))
    totals: dict[str, int] = defaultdict(int)
    for item in query["counters"]:
        value = item.committed if item.committed is not None else item.attempted
        totals[item.key.metric.name] += value or 0
    return dict(sorted(totals.items()))


def _with_prefix(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in counters.items() if k.startswith(prefix)}


def accounting(counters: dict[str, int]) -> dict[str, Any]:
    """``records_read = accepted + rejected``, with the parts and whether it holds."""
    read = counters.get("records_read", 0)
    accepted = counters.get("records_accepted", 0)
    rejected = sum(_with_prefix(counters, REJECTED_PREFIX).values())
    return {"records_read": read, "accepted": accepted, "rejected": rejected,
            "balanced": read == accepted + rejected}


def pair_accounting(counters: dict[str, int]) -> dict[str, Any]:
    """``pairs_admitted = dropped by pair filters + over the group cap + duplicates +
    written``, with the parts and whether it holds."""
    admitted = counters.get("pairs_admitted", 0)
    parts = {"dropped_by_filters": sum(_with_prefix(counters, PAIRS_DROPPED_PREFIX).values()),
             "over_group_cap": counters.get("pairs_over_group_cap_dropped", 0),
             "duplicates": counters.get("duplicate_pairs_dropped", 0),
             "written": counters.get("pairs_written", 0)}
    return {"admitted": admitted, **parts, "balanced": admitted == sum(parts.values())}


def build_summary(
    pipeline: str, settings: dict[str, Any], beam_options: dict[str, Any],
    counters: dict[str, int], variant: str, seconds: float, outputs: dict[str, Any],
) -> dict[str, Any]:
    """The ``_summary.json`` document (``variant`` is the resolved variant name)."""
    return {
        "pipeline": pipeline,
        "version": pipelines.__version__,
        "scheme": settings["scheme"],
        "variant": variant,
        "thresholds": {"low": settings["low"], "high": settings["high"]},
        "options": settings,
        "beam_options": beam_options,
        "counters": counters,
        "accounting": accounting(counters),
        "pair_accounting": pair_accounting(counters),
        "rejected_by_reason": _with_prefix(counters, REJECTED_PREFIX),
        "sentences_dropped_by_rule": _with_prefix(counters, DROPPED_PREFIX),
        "pairs_dropped_by_rule": _with_prefix(counters, PAIRS_DROPPED_PREFIX),
        "elapsed_seconds": round(seconds, 2),
        "outputs": outputs,
    }


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"


def format_summary(summary: dict[str, Any], text_noun: str = "texts") -> str:
    """A few readable lines for the end of a run."""
    c = summary["counters"]
    books = summary["accounting"]
    low, high = summary["thresholds"]["low"], summary["thresholds"]["high"]
    pairs, rejected = summary["outputs"]["pairs"], summary["outputs"]["rejected"]
    check = "ok" if books["balanced"] else "MISMATCH"
    skipped = c.get("pairs_skipped_by_group_cap", 0)
    lines = [
        f"{summary['pipeline']} {summary['version']}: done in {summary['elapsed_seconds']} s "
        f"(runner {summary['options']['runner']})",
        f"  input      {summary['options']['input']}",
        f"  records    {books['records_read']:,} read = {books['accepted']:,} accepted + "
        f"{books['rejected']:,} rejected ({check})",
        f"  rejected   {_listing(summary['rejected_by_reason'])} "
        f"(dead letters: {', '.join(rejected) or '-'})",
        f"  {text_noun:<10} {c.get('texts', 0):,}, of which "
        f"{c.get('texts_without_sentences', 0):,} kept no sentence"
        + (f", {c['copied_answers_joined']:,} joined to an answer they share a sentence with"
           if c.get("copied_answers_joined") else ""),
        f"  sentences  {c.get('sentences', 0):,} kept; dropped by filter: "
        f"{_listing(summary['sentences_dropped_by_rule'])}; "
        f"{c.get('duplicate_sentences', 0):,} repeats in a group",
        f"  scoring    {c.get('candidate_pairs_scored', 0):,} candidate pairs scored in "
        f"{c.get('pair_tasks', 0):,} tasks ({c.get('groups_fanned_out', 0):,} big groups fanned "
        f"out); variant {summary['variant']}, admit {low} <= score < {high}",
        f"  pairs      {c.get('pairs_admitted', 0):,} admitted, dropped by filter: "
        f"{_listing(summary.get('pairs_dropped_by_rule', {}))}; "
        f"{c.get('pairs_over_group_cap_dropped', 0):,} over the group cap dropped"
        f"{f' ({skipped:,} more never scored)' if skipped else ''}, "
        f"{c.get('duplicate_pairs_dropped', 0):,} duplicates dropped -> "
        f"{c.get('pairs_written', 0):,} written",
        f"  output     {len(pairs)} Parquet shard(s): {pairs[0] if pairs else '-'}"
        + (" ..." if len(pairs) > 1 else ""),
        f"  summary    {summary['outputs']['summary']}",
    ]
    return "\n".join(lines)
