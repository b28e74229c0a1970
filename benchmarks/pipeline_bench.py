"""Throughput of the document pipeline against a plain Python loop, and one huge document.

1. Normal documents: the real docs sample, repeated (ids suffixed) to ``--sentences``
   sentences. ``pipelines.doc_pairs`` on Beam's local runner with 1 and 2 worker processes vs a
   plain loop doing the same work with the same library calls: ``split_sentences`` of every
   document, its distinct sentences through ``admitted_pairs`` (all pairs, length- and
   prefix-filtered, scored), the doc scheme's pair filters (``group_drops``), the kept pairs
   deduplicated across documents in a dict.
   Reported: sentences/s, candidate pairs scored/s, admitted pairs/s; the Beam runs are timed
   from ``run()`` to the written summary (job start-up, shuffles and Parquet writing included,
   Python imports not), and per-core throughput = rate / processes. On a shared machine the
   wall time depends on the other load, so CPU time (this process + the SDK worker processes)
   is printed too: sentences per CPU-second is the per-core throughput without contention.
   The fixed cost of a job (start-up: the same job on one document, e.g. starting and
   stopping the SDK worker processes) is measured too, and the per-core throughput is given
   both end to end and after start-up: sentences / (wall − start-up) / processes. Each of
   these is the fastest of ``--rounds`` rounds (the machine is shared; slow rounds are noise).
2. One document of ``--big`` sentences (real sentences of the docs sample, one a line) through
   the pipeline (LSH path) vs naive all-pairs (``admitted_pairs(method="brute")``: every pair
   scored on precomputed profiles, then the doc scheme's pair filters); speed-up and recall
   of the pipeline's pairs. Once as one
   task (default ``--fanout_block``), once cut into ``--blocks`` blocks scored as separate
   tasks by 2 processes (the fan-out path; see ``plan_tasks``). Before the timed runs the
   LSH path is called once on two sentences, so the one-time import of datasketch (and the
   scipy it loads, about 1 s) is not counted, as in ``similarity_bench.py``; the 2-process
   run still pays it in its fresh worker processes.

    python benchmarks/pipeline_bench.py [--sentences 50000] [--rounds 2] [--big 5000] [--blocks 4]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from pipelines import doc_pairs
from pipelines.io import read_json, read_pairs
from similarity import SCHEMES, admitted_pairs, split_sentences
from similarity.pair_filters import SCHEME_RULES, group_drops
from similarity.text import SCHEME_FILTERS

RULES = SCHEME_RULES["doc"]
FILTERS = SCHEME_FILTERS["doc"]

SHARED = Path(os.environ.get("SIMPAIRS_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
MAX_LEN = 64


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the SDK workers)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def repeated_docs(docs: list[dict], sentences: int) -> tuple[list[dict], int]:
    """Documents of ``docs``, cycled with ids ``ID#rN``, until ``sentences`` are reached."""
    out, total, rep = [], 0, 0
    while total < sentences:
        for doc in docs:
            out.append({"id": f"{doc['id']}#r{rep}", "text": doc["text"]})
            total += len(split_sentences(doc["text"], MAX_LEN, FILTERS))
            if total >= sentences:
                break
        rep += 1
    return out, total


def plain_loop(docs: list[dict], low: float, high: float) -> dict[str, float]:
    """The pipeline's work without Beam: split, score, the doc scheme's pair filters
    (``similarity.pair_filters.group_drops``), dedup (smallest group id wins)."""
    start, cpu = time.perf_counter(), cpu_seconds()
    pairs: dict[tuple[str, str], tuple[str, float]] = {}
    sentences = 0
    stats: dict[str, int] = {}
    for doc in docs:
        split = split_sentences(doc["text"], MAX_LEN, FILTERS)
        sentences += len(split)
        distinct = sorted(set(split))
        admitted = admitted_pairs(distinct, low, high, stats=stats)
        keys = [(distinct[i], distinct[j]) for i, j, _ in admitted]
        for (_, _, value), key, rule in zip(admitted, keys, group_drops(keys, RULES),
                                            strict=True):
            if rule is None and (key not in pairs or doc["id"] < pairs[key][0]):
                pairs[key] = (doc["id"], value)
    return {"seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu,
            "sentences": sentences,
            "scored": stats.get("pairs_scored", 0), "pairs": len(pairs)}


def beam_run(input_path: Path, output: Path, *extra: str) -> dict[str, float]:
    """Run ``doc_pairs`` quietly; its counters and wall time from ``run()`` to the summary."""
    start, cpu = time.perf_counter(), cpu_seconds()
    with contextlib.redirect_stdout(io.StringIO()):
        doc_pairs.run(["--input", str(input_path), "--output", str(output), *extra])
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    counters = read_json(str(output / "_summary.json"))["counters"]
    names = {"sentences": "sentences", "scored": "candidate_pairs_scored",
             "pairs": "pairs_written", "tasks": "pair_tasks"}
    return {"seconds": seconds, "cpu": cpu,
            **{key: counters.get(name, 0) for key, name in names.items()}}


def fastest(best: dict | None, run: dict) -> dict:
    """The run with the smaller wall time (``best`` may be None)."""
    return run if best is None or run["seconds"] < best["seconds"] else best


def rates(run: dict[str, float], processes: int) -> str:
    s = run["seconds"]
    return (f"{s:8.2f} s {run['cpu']:8.2f} s {run['sentences'] / s:10,.0f} "
            f"{run['scored'] / s:10,.0f} {run['pairs'] / s:8,.0f} "
            f"{run['sentences'] / s / processes:11,.0f} {run['sentences'] / run['cpu']:11,.0f}")


def big_document(docs: list[dict], size: int) -> list[str]:
    """The first ``size`` distinct sentences of the docs sample (real text, one a line)."""
    seen: dict[str, None] = {}
    for doc in docs:
        for sentence in split_sentences(doc["text"], MAX_LEN, FILTERS):
            seen.setdefault(sentence)
            if len(seen) == size:
                return list(seen)
    raise ValueError(f"the docs sample has fewer than {size} distinct sentences")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=SHARED / "docs" / "docs_sample.jsonl")
    parser.add_argument("--sentences", type=int, default=50_000)
    parser.add_argument("--big", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of part 1; each measurement keeps its fastest round")
    parser.add_argument("--blocks", type=int, default=4,
                        help="blocks of the fanned-out run of the big document")
    args = parser.parse_args(argv)
    docs = [json.loads(line) for line in args.docs.read_text(encoding="utf-8").splitlines()]
    low, high = SCHEMES["doc"].low, SCHEMES["doc"].high
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        corpus, total = repeated_docs(docs, args.sentences)
        corpus_path = tmp / "docs.jsonl"
        corpus_path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus),
                               encoding="utf-8")
        print(f"1. {len(corpus):,} documents, {total:,} sentences (docs sample repeated); "
              f"doc thresholds {low} <= score < {high}")
        print(f"{'':28s}{'wall':>10s} {'CPU':>10s} {'sent/s':>10s} {'scored/s':>10s} "
              f"{'pairs/s':>8s} {'sent/s/proc':>11s} {'sent/CPU-s':>11s}")
        tiny_path = tmp / "tiny.jsonl"
        tiny_path.write_text(json.dumps(corpus[0], ensure_ascii=False) + "\n", encoding="utf-8")
        configs = ((1, ["--runner=DirectRunner"]),
                   (2, ["--runner=FnApiRunner", "--direct_num_workers=2",
                        "--direct_running_mode=multi_processing"]))
        plain, runs = None, {}
        for _ in range(args.rounds):  # each measurement: the fastest of its rounds
            plain = fastest(plain, plain_loop(corpus, low, high))
            for processes, extra in configs:
                run = beam_run(corpus_path, tmp / f"p{processes}", *extra)
                run["startup"] = beam_run(tiny_path, tmp / "tiny", *extra)["seconds"]
                if processes in runs:
                    run["startup"] = min(run["startup"], runs[processes]["startup"])
                runs[processes] = fastest(runs.get(processes), run)
        print(f"{'plain Python loop':28s}{rates(plain, 1)}")
        for processes, run in runs.items():
            print(f"{f'Beam, {processes} process(es)':28s}{rates(run, processes)}")
        same = plain["pairs"] == runs[1]["pairs"] == runs[2]["pairs"]
        print(f"   distinct pairs: plain {plain['pairs']:,}, Beam {runs[1]['pairs']:,} / "
              f"{runs[2]['pairs']:,} ({'equal' if same else 'DIFFERENT'})")
        for processes, run in runs.items():
            print(f"   {processes} process(es): per-core throughput vs plain loop "
                  f"{plain['seconds'] / run['seconds'] / processes:.2f}x by wall time "
                  f"(goal >= 0.5x), {plain['cpu'] / run['cpu']:.2f}x by CPU time; job start-up "
                  f"(the same job on 1 document) {run['startup']:.2f} s wall; after start-up "
                  f"{plain['seconds'] / (run['seconds'] - run['startup']) / processes:.2f}x")
        print(f"   wall-clock speed-up of 2 processes over 1: "
              f"{runs[1]['seconds'] / runs[2]['seconds']:.2f}x")

        sentences = big_document(docs, args.big)
        big_path = tmp / "big.jsonl"
        big_path.write_text(json.dumps({"id": "big", "text": "\n".join(sentences)},
                                       ensure_ascii=False) + "\n", encoding="utf-8")
        admitted_pairs(sentences[:2], low, high, method="lsh")  # import datasketch once
        naive_stats: dict[str, int] = {}
        start = time.perf_counter()
        naive = admitted_pairs(sentences, low, high, method="brute", stats=naive_stats)
        naive_seconds = time.perf_counter() - start
        pairs = [tuple(sorted((sentences[i], sentences[j]))) for i, j, _ in naive]
        truth = {p for p, rule in zip(pairs, group_drops(pairs, RULES), strict=True) if not rule}
        print(f"2. one document of {len(sentences):,} sentences")
        print(f"   {'naive all-pairs':38s}{naive_seconds:8.2f} s, "
              f"{naive_stats['pairs_scored']:>12,} pairs scored, {len(truth):,} admitted")
        block = -(-len(sentences) // args.blocks)
        for label, extra in (
            ("Beam, 1 process, one task", ["--runner=DirectRunner"]),
            (f"Beam, 2 processes, {args.blocks} blocks",
             ["--runner=FnApiRunner", "--direct_num_workers=2",
              "--direct_running_mode=multi_processing", f"--fanout_block={block}"]),
        ):
            big = beam_run(big_path, tmp / "big", *extra)
            found = {(r["text_a"], r["text_b"])
                     for r in read_pairs(str(tmp / "big")).to_pylist()}
            recall = len(truth & found) / len(truth) if truth else 1.0
            print(f"   {label:38s}{big['seconds']:8.2f} s, {big['scored']:>12,} pairs scored in "
                  f"{big['tasks']} task(s), {len(found):,} admitted, {len(found - truth)} not in "
                  f"naive; speed-up {naive_seconds / big['seconds']:.1f}x (goal >= 10x), "
                  f"recall {recall:.4f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
