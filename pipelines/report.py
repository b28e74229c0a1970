"""One-page HTML report of a built corpus, for judging its quality at a glance.

    python -m pipelines.report [DIR] [--seed S] [--samples 20]

``DIR`` (default ``out/corpus``) is a ``build_corpus`` output folder: the report reads its
``_manifest.json``, every shard it lists, and the ``_summary.json`` of each input the manifest
lists (where present), and writes ``DIR/_report.html``: one self-contained file with embedded
PNG figures (matplotlib, Agg backend; the ``analysis`` extra). Sections: corpus overview; score
histogram per scheme with the scheme's admission thresholds marked; sentence lengths
(characters of ``text_a`` and ``text_b``); pairs per group; dead-letter reasons and
sentence-filter counts of every input pipeline; pair filters: the pairs each rule dropped
(``pairs_dropped_by_rule``) and up to ``--samples`` rows of each rule's audit sample
(``_dropped-<rule>.jsonl`` beside the input's pairs, listed in its summary); ``--samples``
pairs per scheme drawn by the seeded content hash (``unit_hash(seed, "report", row)``,
smallest first; every text HTML-escaped). Standard Beam options are accepted and ignored: the
report runs locally.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import html
import io
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from pipelines.corpus import MANIFEST_FILE, row_parts
from pipelines.hashing import content_hash
from pipelines.io import (
    matching_files,
    prepare_output,
    read_json,
    read_jsonl,
    read_parquet_shards,
    run_staged,
    shard_prefix,
)

REPORT_FILE = "_report.html"
DEFAULT_DIR = "out/corpus"
DEFAULT_SAMPLES = 20
SECTIONS = ("Overview", "Scores", "Sentence lengths", "Pairs per group",
            "Dead letters and sentence filters", "Pair filters", "Sample pairs")
SCORE_BINS = np.linspace(0.0, 1.0, 41)
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "PingFang SC",
             "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", "Droid Sans Fallback")
"""Fonts with Chinese glyphs, preferred first: the report's CSS font stack (then the browser's
``sans-serif``) and the fonts matplotlib tries first (``cjk_font``)."""


@dataclass
class SchemeStats:
    """What the report needs of one scheme's rows, gathered shard by shard."""

    scores: list[np.ndarray] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    groups: Counter = field(default_factory=Counter)
    heap: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    drawn: dict[tuple[str, ...], dict] = field(default_factory=dict)

    def add(self, table: pa.Table, seed: int, samples: int) -> None:
        self.scores.append(table.column("score").to_numpy())
        for column in ("text_a", "text_b"):
            self.lengths.append(pc.utf8_length(table.column(column)).to_numpy())
        self.groups.update(table.column("group_id").to_pylist())
        if samples:
            for row in table.to_pylist():
                self._draw(row, seed, samples)

    def _draw(self, row: dict, seed: int, samples: int) -> None:
        """Keep the ``samples`` distinct rows with the smallest hash (a max-heap on -hash)."""
        parts = row_parts(row)
        if parts in self.drawn:
            return
        item = (-content_hash(seed, "report", *parts), parts)
        if len(self.heap) < samples:
            heapq.heappush(self.heap, item)
        elif item > self.heap[0]:
            del self.drawn[heapq.heapreplace(self.heap, item)[1]]
        else:
            return
        self.drawn[parts] = row

    def sample_rows(self) -> list[dict]:
        """The drawn rows, smallest hash first."""
        return [self.drawn[parts] for _, parts in sorted(self.heap, reverse=True)]


def gather(directory: str, manifest: dict[str, Any], seed: int, samples: int):
    """Per-scheme ``SchemeStats`` over every shard the manifest lists (read one at a time)."""
    stats: dict[str, SchemeStats] = defaultdict(SchemeStats)
    rows = 0
    for shard in manifest["shards"]:
        table = read_parquet_shards(shard_prefix(directory, shard["file"]))
        rows += table.num_rows
        for scheme in sorted(set(table.column("scheme").to_pylist())):
            part = table.filter(pc.equal(table.column("scheme"), scheme))
            stats[scheme].add(part, seed, samples)
    return dict(sorted(stats.items())), rows


def input_summaries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The full ``_summary.json`` of every input the manifest lists that still exists."""
    found = []
    for side in manifest["inputs"].values():
        for listed in side.get("summaries", []):
            if matching_files(listed["path"]):
                found.append({**read_json(listed["path"]), "path": listed["path"]})
    return found


def scheme_thresholds(summaries: list[dict[str, Any]]) -> dict[str, set[tuple[float, float]]]:
    marks: dict[str, set[tuple[float, float]]] = defaultdict(set)
    for summary in summaries:
        thresholds = summary.get("thresholds") or {}
        if "low" in thresholds and "high" in thresholds:
            marks[summary.get("scheme")].add((thresholds["low"], thresholds["high"]))
    return marks


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def cjk_font() -> str | None:
    """The first of ``CJK_FONTS`` that matplotlib finds installed (``font_manager``), else the
    first installed font whose name says CJK, else None (figures then show Chinese as boxes;
    Debian/Ubuntu: ``apt-get install fonts-noto-cjk``)."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    preferred = [name for name in CJK_FONTS if name in installed]
    fallback = sorted(name for name in installed if "CJK" in name)
    return (preferred + fallback or [None])[0]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font()
    if font and font not in plt.rcParams["font.sans-serif"]:
        plt.rcParams["font.sans-serif"] = [font, *plt.rcParams["font.sans-serif"]]
    return plt


def score_figure(stats: dict[str, SchemeStats], marks) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(stats), figsize=(4.2 * len(stats), 3.2), squeeze=False)
    for ax, (scheme, s) in zip(axes[0], stats.items(), strict=True):
        ax.hist(np.concatenate(s.scores), bins=SCORE_BINS, color="#4c72b0")
        for low, high in sorted(marks.get(scheme, ())):
            ax.axvline(low, color="#c44e52", linestyle="--", label=f"low {low}")
            ax.axvline(high, color="#dd8452", linestyle=":", label=f"high {high}")
        ax.set_title(f"{scheme} ({sum(map(len, s.scores)):,} pairs)")
        ax.set_xlabel("score")
        ax.set_xlim(0, 1)
        if marks.get(scheme):
            ax.legend(fontsize=8)
    axes[0][0].set_ylabel("pairs")
    return _png(fig)


def length_figure(stats: dict[str, SchemeStats]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    longest = max(int(np.concatenate(s.lengths).max()) for s in stats.values())
    bins = np.arange(0, longest + 3, max(1, (longest + 2) // 60))
    for scheme, s in stats.items():
        ax.hist(np.concatenate(s.lengths), bins=bins, histtype="step", density=True,
                linewidth=1.5, label=scheme)
    ax.set_xlabel("sentence length (characters, text_a and text_b)")
    ax.set_ylabel("share of sentences")
    ax.legend()
    return _png(fig)


def group_figure(stats: dict[str, SchemeStats]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    largest = max(max(s.groups.values()) for s in stats.values())
    bins = np.arange(0.5, largest + 1.5, max(1, largest // 50))
    for scheme, s in stats.items():
        ax.hist(list(s.groups.values()), bins=bins, histtype="step", linewidth=1.5,
                label=scheme)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_yscale("log")
    ax.set_xlabel("pairs per group (in the corpus)")
    ax.set_ylabel("groups")
    ax.legend()
    return _png(fig)


def counts_figure(summaries: list[dict[str, Any]]) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.5 + 0.35 * max(4, _bars(summaries))))
    for ax, key, title in ((axes[0], "rejected_by_reason", "dead letters by reason"),
                           (axes[1], "sentences_dropped_by_rule", "sentences dropped by rule")):
        labels, values = [], []
        for summary in summaries:
            for name, count in sorted(summary.get(key, {}).items()):
                labels.append(f"{summary.get('scheme')}: {name}")
                values.append(count)
        ax.barh(labels or ["(none)"], values or [0], color="#55a868")
        ax.set_xlim(0, max(values, default=0) * 1.1 or 1)
        ax.set_title(title)
        ax.invert_yaxis()
    return _png(fig)


def _bars(summaries: list[dict[str, Any]]) -> int:
    return max(len(s.get(k, {})) * len(summaries) for s in summaries or [{}]
               for k in ("rejected_by_reason", "sentences_dropped_by_rule"))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:,}" if isinstance(value, int) else str(value)
        return html.escape(text)

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def overview_rows(manifest: dict[str, Any], stats: dict[str, SchemeStats]) -> list[list[Any]]:
    rows = []
    for scheme, s in stats.items():
        scores = np.concatenate(s.scores)
        lengths = np.concatenate(s.lengths)
        per_group = np.array(list(s.groups.values()))
        rows.append([scheme, int(scores.size), f"{scores.mean():.3f}",
                     f"{np.median(lengths):.0f}", len(s.groups), int(per_group.max()),
                     f"{per_group.mean():.2f}"])
    return rows


def summary_rows(summaries: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for s in summaries:
        books = s.get("accounting", {})
        c = s.get("counters", {})
        rows.append([s.get("pipeline"), s.get("scheme"), s.get("variant"),
                     f"{s.get('thresholds', {}).get('low')} <= score < "
                     f"{s.get('thresholds', {}).get('high')}",
                     books.get("records_read", 0), books.get("rejected", 0),
                     c.get("sentences", 0), c.get("pairs_written", 0)])
    return rows


def pair_filter_section(summaries: list[dict[str, Any]], samples: int) -> str:
    """Counts per rule and the first ``samples`` rows of each audit file of every input."""
    parts = []
    for s in summaries:
        dropped = s.get("pairs_dropped_by_rule", {})
        parts.append(f"<h3>{html.escape(str(s.get('scheme')))}: {html.escape(s['path'])}</h3>"
                     f"<p>pairs dropped by rule: {html.escape(_counts(dropped))}</p>")
        for path in s.get("outputs", {}).get("dropped", []):
            if not matching_files(path):
                continue
            rows = read_jsonl(path)[:samples]
            parts.append(f"<p>audit sample <code>{html.escape(path)}</code> "
                         f"({len(rows)} shown)</p>"
                         + _table(["rule", "score", "text_a", "text_b", "group_id"],
                                  [[r["rule"], f"{r['score']:.3f}", r["text_a"], r["text_b"],
                                    r["group_id"]] for r in rows]))
    return "".join(parts) or "<p>No input _summary.json found.</p>"


def render(directory: str, seed: int | None = None, samples: int = DEFAULT_SAMPLES) -> str:
    """The report HTML of the corpus in ``directory`` (see the module docstring)."""
    return _report(directory, seed, samples)[0]


def _text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(header)] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row]
                              for row in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if k else c.ljust(w)
                               for k, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in cells)


def _report(directory: str, seed: int | None, samples: int) -> tuple[str, str]:
    """``(HTML page, plain-text overview)`` of the corpus in ``directory``."""
    manifest = read_json(shard_prefix(directory, MANIFEST_FILE))
    seed = manifest["seed"] if seed is None else seed
    stats, rows = gather(directory, manifest, seed, samples)
    if rows != manifest["total_rows"]:
        raise ValueError(f"{directory}: shards hold {rows} rows, the manifest says "
                         f"{manifest['total_rows']}")
    if not stats:
        raise ValueError(f"{directory}: the corpus has no rows")
    summaries = input_summaries(manifest)
    inputs = manifest["inputs"]
    balance = [[side, v["rows"], v["rows_out"], len(v["files"]), ", ".join(v["globs"])]
               for side, v in inputs.items()]
    sample_html = "".join(
        f"<h3>{html.escape(scheme)}</h3>"
        + _table(["score", "text_a", "text_b", "group_id"],
                 [[f"{r['score']:.3f}", r["text_a"], r["text_b"], r["group_id"]]
                  for r in s.sample_rows()])
        for scheme, s in stats.items()
    )
    overview_header = ["scheme", "pairs", "mean score", "median length", "groups",
                       "max pairs/group", "mean pairs/group"]
    overview = overview_rows(manifest, stats)
    parts = [
        ("Overview",
         f"<p>{manifest['total_rows']:,} rows ({_counts(manifest['rows_per_split'])}); "
         f"mode {html.escape(manifest['mode'])}, ratio {manifest['ratio']}, seed "
         f"{manifest['seed']}, created {html.escape(manifest['created'])}; content hash "
         f"<code>{html.escape(manifest['content_hash'])}</code></p>"
         + _table(["side", "rows in", "rows out", "files", "inputs"], balance)
         + _table(overview_header, overview)),
        ("Scores", score_figure(stats, scheme_thresholds(summaries))),
        ("Sentence lengths", length_figure(stats)),
        ("Pairs per group", group_figure(stats)),
        ("Dead letters and sentence filters",
         (_table(["pipeline", "scheme", "variant", "admitted", "records", "dead letters",
                  "sentences", "pairs written"], summary_rows(summaries))
          + _table(["input", "dead letters by reason", "sentences dropped by rule"],
                   [[s["path"], _counts(s.get("rejected_by_reason", {})),
                     _counts(s.get("sentences_dropped_by_rule", {}))] for s in summaries])
          + counts_figure(summaries)) if summaries
         else "<p>No input _summary.json found.</p>"),
        ("Pair filters", pair_filter_section(summaries, samples)),
        (f"Sample pairs ({samples} per scheme, seed {seed})", sample_html),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>\n{content}\n" for title, content in parts)
    text = (f"{manifest['total_rows']:,} rows ({_counts(manifest['rows_per_split'])}), "
            f"{manifest['mode']} at ratio {manifest['ratio']}, seed {manifest['seed']}\n"
            + _text_table(overview_header, overview))
    font_stack = ",".join([*(f'"{name}"' for name in CJK_FONTS), "sans-serif"])
    return (
        "<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\">"
        f"<title>simpairs corpus report: {html.escape(directory)}</title><style>"
        f"body{{font-family:{font_stack};margin:2em;max-width:1150px}}"
        "table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;font-size:14px}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>Corpus report: {html.escape(directory)}</h1>\n{body}</body></html>\n"
    ), text


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"


def build_report(directory: str, seed: int | None = None,
                 samples: int = DEFAULT_SAMPLES) -> str:
    """Write ``directory/_report.html`` (any Beam filesystem; through the staging folder, so
    an earlier report is replaced whole or not at all), print the overview; return the
    report's path."""
    if not matching_files(shard_prefix(directory, MANIFEST_FILE)):
        raise FileNotFoundError(f"{directory}: no {MANIFEST_FILE} (run pipelines.build_corpus)")
    page, text = _report(directory, seed, samples)
    staged = shard_prefix(prepare_output(directory), REPORT_FILE)

    def write_page() -> None:
        with FileSystems.create(staged, mime_type="text/html") as f:
            f.write(page.encode())

    run_staged(directory, [], "report", write_page)
    print(text, flush=True)
    return shard_prefix(directory, REPORT_FILE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default=DEFAULT_DIR,
                        help=f"build_corpus output folder (default {DEFAULT_DIR})")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the sample pairs (default: the corpus seed)")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                        help=f"sample pairs per scheme (default {DEFAULT_SAMPLES})")
    for name in ("--runner", "--direct_num_workers", "--direct_running_mode"):
        parser.add_argument(name, help="accepted and ignored: the report runs locally")
    args = parser.parse_args(argv)
    if args.samples < 0:
        parser.error(f"--samples must be >= 0, got {args.samples}")
    try:
        path = build_report(args.directory, args.seed, args.samples)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
