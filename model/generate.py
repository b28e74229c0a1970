"""Similar-sentence generation with RoFormer-Sim: sample n, keep the k closest, with scores.

Usage::

    python -m model.generate --checkpoint DIR [--n 100] [--k 20] [--top_p 0.95] [--top_k 0] \\
        [--max_len 64] [--seed S] [--output FILE] (--input FILE | TEXT ...)

The recipe of the reference ``gen_synonyms(text, n, k)`` (ZhuiyiTechnology/roformer-sim): the
input ``[CLS] text [SEP]`` is segment a of a UniLM seq2seq model; ``n`` continuations (segment b)
are sampled token by token until ``[SEP]``; duplicates, empty outputs and copies of the input are
dropped; the rest are ranked by the cosine similarity of their pooled vectors to the input's and
the best ``k`` are returned with that cosine as ``score``. ``[MASK]`` in the input is kept as the
mask token, so the model fills masked parts (it was trained on BART-style noised inputs).

Speed: all inputs × n samples decode as one batch (in chunks that fit ``max_cache_mb``), the
prompt is encoded once per input, and each step feeds only the newest token, reading earlier keys
and values from a cache. That is exact for UniLM: segment-a tokens never attend to segment b and
segment-b tokens attend causally, so cached keys/values never change.

Determinism: sample j of an input draws its uniforms u_{j,t} from a ``torch.Generator`` seeded with
blake2b(seed, text), and picks the token by inverse CDF over the top-k/top-p filtered
distribution. The output for an input therefore depends only on (model, text, settings, seed),
not on the other inputs, the chunking or whether the cache is used -- up to floating-point
rounding: a row's logits can differ in the last bits with the batch shape, which flips a draw
only when its uniform falls on a boundary of the kept distribution (the same call always returns
the same output).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from tqdm import tqdm

from model import cli
from model.encode import check_texts, encode_ids, load_checkpoint, read_lines, tokenize
from model.roformer import RoFormerSim
from model.tokenizer import Tokenizer

CPU_MAX_ROWS = 256
_STRIDE = 16  # every 16th probability estimates the nucleus threshold's rank
_CPU_SAMPLE_ROWS = 32  # rows sampled together on CPU, so that their buffers stay in cache
_BLOCK = 64  # tokens per block of the CPU inverse CDF


@dataclass(frozen=True)
class SamplingConfig:
    """How candidates are drawn.

    ``n`` samples per input, ``top_k`` (0: off) keeps the k most probable tokens, ``top_p``
    (1: off) keeps the smallest most-probable set whose mass reaches p (the most probable token is
    always kept), ``max_len`` output tokens at most (``[SEP]`` included), ``seed`` for the
    uniforms. ``top_k=1`` is greedy decoding.
    """

    n: int = 100
    top_p: float = 0.95
    top_k: int = 0
    max_len: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 turns it off), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_len < 1:
            raise ValueError(f"max_len must be at least 1, got {self.max_len}")


def sample_uniforms(text: str, config: SamplingConfig) -> torch.Tensor:
    """(n, max_len) float64 uniforms in [0, 1) for one input, from blake2b(seed, text)."""
    digest = hashlib.blake2b(f"{config.seed}\x00{text}".encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    return torch.rand((config.n, config.max_len), generator=generator, dtype=torch.float64)


def sample_next(
    logits: torch.Tensor, uniforms: torch.Tensor, top_k: int, top_p: float
) -> torch.Tensor:
    """Token ids (R,) drawn from softmax(logits) (R, V) by inverse CDF at ``uniforms`` (R,).

    With p sorted in descending order, ``top_k`` (if > 0) keeps the first k and ``top_p`` (if < 1)
    keeps the nucleus among those: the prefix whose mass before each token is still < top_p of
    the kept mass (as bert4keras and HF apply top-k, renormalise, then top-p). The cut is applied
    as a probability threshold, so tokens tied with the last kept one are kept too. The chosen
    token is the first, in vocabulary order, whose cumulative kept mass exceeds u · (kept mass);
    vocabulary order makes the choice insensitive to how near-equal probabilities sort.

    On CPU the threshold comes from a partial sort (:func:`_windowed_threshold`) and rows are
    handled ``_CPU_SAMPLE_ROWS`` at a time, grouped by nucleus size, so that each group's
    (rows, V) buffers stay in the processor cache, the groups spread over
    ``torch.get_num_threads()`` worker threads (each group's draws depend on its rows only);
    elsewhere from a full sort.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    top_k = top_k if top_k < probs.shape[-1] else 0
    if probs.device.type != "cpu":
        return _sample_sorted(probs, uniforms.to(probs.device), top_k, top_p)
    values, u = probs.numpy(), uniforms.numpy().astype(np.float64)
    windowed = top_p < 1 and not top_k
    if windowed:
        target = (1 - top_p) * values.sum(axis=-1, keepdims=True).astype(np.float64)
        rank = _rank_estimate(values, target)
        order = np.argsort(rank, kind="stable")
    else:
        order = np.arange(len(values))
    picks = np.empty(len(values), dtype=np.int64)

    def sample_group(rows: np.ndarray) -> None:
        part = values[rows]
        threshold = None
        if windowed:
            threshold = _windowed_threshold(part, target[rows], rank[rows], top_p)
        elif top_k:
            top = np.partition(part.view(np.int32), -top_k, axis=-1)[:, -top_k:]
            asc = torch.from_numpy(np.sort(top, axis=-1).view(np.float32))
            threshold = (_nucleus_cut(asc, top_p)[0] if top_p < 1 else asc[:, :1]).numpy()
        if threshold is not None:
            np.multiply(part, part >= threshold, out=part)
        picks[rows] = _inverse_cdf_blocked(part, u[rows])

    groups = [order[start:start + _CPU_SAMPLE_ROWS]
              for start in range(0, len(order), _CPU_SAMPLE_ROWS)]
    threads = min(torch.get_num_threads(), len(groups))
    if threads > 1:
        list(_thread_pool(threads).map(sample_group, groups))
    else:
        for rows in groups:
            sample_group(rows)
    return torch.from_numpy(picks)


@cache
def _thread_pool(threads: int) -> ThreadPoolExecutor:
    """Workers for :func:`sample_next`'s row groups (NumPy releases the GIL in their work)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="sample_next")


def _sample_sorted(probs: torch.Tensor, uniforms: torch.Tensor, top_k: int,
                   top_p: float) -> torch.Tensor:
    """:func:`sample_next` from probabilities (R, V) by a full sort and a cumulative sum over the
    vocabulary, in torch (the path off CPU). ``probs`` is overwritten."""
    if top_p < 1 or top_k:
        asc = torch.sort(probs, dim=-1).values[:, probs.shape[-1] - (top_k or probs.shape[-1]):]
        threshold = _nucleus_cut(asc, top_p)[0] if top_p < 1 else asc[:, :1]
        probs.masked_fill_(probs < threshold, 0.0)
    cdf = probs.cumsum(dim=-1, dtype=torch.float64)
    total = cdf[:, -1:].contiguous()
    pick = torch.searchsorted(cdf, uniforms.to(cdf.dtype).unsqueeze(1) * total, right=True)
    return torch.minimum(pick, torch.searchsorted(cdf, total)).squeeze(1)


def _inverse_cdf_blocked(kept: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """(R,) first index, in vocabulary order, whose cumulative ``kept`` mass (R, V) exceeds
    u · (kept mass) (a u · (kept mass) that rounds up to the whole mass takes the last kept
    token), without a cumulative sum over the whole vocabulary: the cumulative masses of blocks
    of ``_BLOCK`` tokens locate the block of the draw, and that block's own cumulative sum the
    token (sums in float64)."""
    rows, vocab = kept.shape
    starts = np.arange(0, vocab, _BLOCK)
    sums = np.add.reduceat(kept, starts, axis=1)  # (R, blocks)
    cum = torch.from_numpy(sums).cumsum(dim=-1, dtype=torch.float64).numpy()
    draw = uniforms * cum[:, -1]
    last_block = len(starts) - 1 - np.argmax(sums[:, ::-1] > 0, axis=-1)
    block = np.minimum((cum <= draw[:, None]).sum(axis=-1), last_block)
    index = np.arange(rows)
    before = np.where(block > 0, cum[index, block - 1], 0.0)
    columns = block[:, None] * _BLOCK + np.arange(_BLOCK)  # (R, _BLOCK)
    inner = np.where(columns < vocab, kept[index[:, None], np.minimum(columns, vocab - 1)], 0)
    within = torch.from_numpy(inner).cumsum(dim=-1, dtype=torch.float64).numpy()
    token = (within + before[:, None] <= draw[:, None]).sum(axis=-1)
    return block * _BLOCK + np.minimum(token, _BLOCK - 1 - np.argmax(inner[:, ::-1] > 0, axis=-1))


def _rank_estimate(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(R,) estimated rank, in ascending order, of each row's nucleus threshold: where the mass of
    every ``_STRIDE``-th value, sorted and scaled by the stride, first exceeds ``target`` (R, 1)."""
    sample = np.sort(values[:, ::_STRIDE].view(np.int32), axis=-1).view(np.float32)
    scale = values.shape[1] / sample.shape[1]
    cum = torch.from_numpy(sample).cumsum(dim=-1).numpy()
    return (cum * scale <= target).sum(axis=-1) * scale


def _windowed_threshold(values: np.ndarray, target: np.ndarray, rank: np.ndarray,
                        top_p: float) -> np.ndarray:
    """(R, 1) smallest kept probability of rows ``values`` (R, V): the nucleus is the suffix of the
    ascending order whose preceding (smaller) mass exceeds ``target`` = (1 − top_p) · (row mass),
    and the threshold is its first value.

    Only the ranks [lo, hi) around the estimates ``rank`` (± 256 + a quarter of the distance to
    the nearer end of the vocabulary) are sorted: ``np.partition`` gathers them, and the
    threshold is searched in their sorted values offset by the mass of the ranks below lo. A
    window within V/6 of an end extends to it (one partition instead of two); rows whose
    threshold falls outside the window, and groups whose window would span half the vocabulary,
    sort whole rows. Probabilities are non-negative, so they order like their int32 bit
    patterns, which NumPy partitions and sorts faster than floats.
    """
    vocab = values.shape[1]
    bits = values.view(np.int32)
    margin = 256 + np.minimum(rank, vocab - rank) // 4
    lo, hi = int(max(0, (rank - margin).min())), int(min(vocab, (rank + margin).max() + 1))
    lo, hi = (0 if lo < vocab // 6 else lo), (vocab if hi > vocab - vocab // 6 else hi)
    if hi - lo >= vocab // 2:
        lo, hi = 0, vocab
    parted = bits.copy()
    if lo:
        parted.partition(lo, axis=-1)
    if hi < vocab:
        parted[:, lo:].partition(hi - 1 - lo, axis=-1)
    parted[:, lo:hi].sort(axis=-1)
    window = torch.from_numpy(parted[:, lo:hi].view(np.float32))
    offset = parted[:, :lo].view(np.float32).sum(axis=-1, keepdims=True, dtype=np.float64)
    threshold, missed = _nucleus_cut(window, top_p, torch.from_numpy(target),
                                     torch.from_numpy(offset))
    threshold, missed = threshold.numpy(), missed.numpy()
    if missed.any():
        asc = np.sort(bits[missed], axis=-1).view(np.float32)
        threshold[missed] = _nucleus_cut(torch.from_numpy(asc), top_p,
                                         torch.from_numpy(target[missed]))[0].numpy()
    return threshold


def _nucleus_cut(asc: torch.Tensor, top_p: float, target: torch.Tensor | None = None,
                 offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Threshold (R, 1) and missed (R,) for rows of values sorted ascending (R, W) (whole rows,
    or a window of them above ranks of mass ``offset`` (R, 1)): the first value whose cumulative
    mass exceeds ``target`` (R, 1), by default (1 − top_p) of the row's mass. ``missed`` marks
    rows whose threshold lies outside the window (its value is then meaningless)."""
    cum = asc.cumsum(dim=-1, dtype=torch.float64)
    if offset is not None:
        cum += offset
    if target is None:
        target = (1 - top_p) * cum[:, -1:]
    first = (cum <= target).sum(dim=-1, keepdim=True)
    threshold = asc.gather(1, first.clamp(max=asc.shape[1] - 1))
    missed = first.squeeze(1) == asc.shape[1]
    if offset is not None:
        missed |= (offset > target).squeeze(1)
    return threshold, missed


def _right_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device):
    """ids (B, L) right-padded with ``pad_id``, attention mask (B, L) and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)] = torch.as_tensor(seq)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    return ids.to(device), mask.to(device), lengths.to(device)


def _select_cache(cache, rows: torch.Tensor):
    return tuple((k[rows], v[rows]) for k, v in cache)


@dataclass(frozen=True)
class DecodeBatch:
    """Rows to decode: row r continues ``prompts[rows[r]]`` (a full ``[CLS] a [SEP]`` id list)
    with ``uniforms[r]`` (R, steps), one uniform per step, until ``end_id``; ``pad_id`` pads."""

    prompts: Sequence[Sequence[int]]
    rows: Sequence[int]
    uniforms: torch.Tensor
    end_id: int
    pad_id: int


@torch.no_grad()
def decode_cached(model: RoFormerSim, batch: DecodeBatch, top_k: int,
                  top_p: float) -> list[list[int]]:
    """Sample one continuation per row with a key/value cache; ids up to and incl. ``end_id``.

    Each prompt is encoded once (right-padded batch), its cache copied to its rows; then every step
    feeds one token per unfinished row at rotary position len(prompt) + t. Finished rows leave the
    batch. At most ``batch.uniforms.shape[1]`` steps.
    """
    prompts, rows, uniforms = batch.prompts, batch.rows, batch.uniforms
    device = next(model.parameters()).device
    ids, prompt_mask, lengths = _right_pad(prompts, batch.pad_id, device)
    out = model(ids, torch.zeros_like(ids), prompt_mask, unilm=True, return_logits=False,
                use_cache=True)
    index = torch.as_tensor(rows, dtype=torch.long, device=device)
    last = out.last_hidden_state[torch.arange(len(lengths), device=device), lengths - 1]
    logits = model.lm_head(last)[index]  # (R, V)
    cache = _select_cache(out.past_key_values, index)
    mask, position = prompt_mask[index], lengths[index]
    active = torch.arange(len(rows), device=device)
    results: list[list[int]] = [[] for _ in rows]
    uniforms = uniforms.to(device)
    for step in range(uniforms.shape[1]):
        tokens = sample_next(logits, uniforms[active, step], top_k, top_p)
        for r, token in zip(active.tolist(), tokens.tolist()):
            results[r].append(token)
        alive = tokens != batch.end_id
        if step + 1 == uniforms.shape[1] or not alive.any():
            break
        if not alive.all():
            keep = alive.nonzero().squeeze(1)
            active, tokens, mask, position = active[keep], tokens[keep], mask[keep], position[keep]
            cache = _select_cache(cache, keep)
        mask = torch.cat((mask, torch.ones_like(mask[:, :1])), dim=1)
        out = model(tokens[:, None], torch.ones_like(tokens[:, None]), mask, return_logits=False,
                    past_key_values=cache, use_cache=True, position_ids=(position + step)[:, None])
        cache = out.past_key_values
        logits = model.lm_head(out.last_hidden_state[:, -1])
    return results


@torch.no_grad()
def decode_uncached(model: RoFormerSim, batch: DecodeBatch, top_k: int, top_p: float,
                    all_logits: bool = True) -> list[list[int]]:
    """Same contract as :func:`decode_cached`, recomputing the whole sequence at every step.

    The reference approach (bert4keras ``AutoRegressiveDecoder`` in roformer-sim's
    ``gen_synonyms``): each step runs the model on ``[CLS] a [SEP] b_1..b_t`` (segment ids 0 then
    1, UniLM mask, right padding) and samples from the logits of each row's last token. As there
    (``last_token`` of the seq2seq model's output) the LM head runs on every position unless
    ``all_logits=False``. Used to check the cache and as the benchmark baseline.
    """
    prompts, rows, uniforms = batch.prompts, batch.rows, batch.uniforms
    device = next(model.parameters()).device
    uniforms = uniforms.to(device)
    results: list[list[int]] = [[] for _ in rows]
    active = list(range(len(rows)))
    for step in range(uniforms.shape[1]):
        ids, mask, lengths = _right_pad([list(prompts[rows[r]]) + results[r] for r in active],
                                        batch.pad_id, device)
        segments = torch.zeros_like(ids)
        for i, r in enumerate(active):
            segments[i, len(prompts[rows[r]]): int(lengths[i])] = 1
        out = model(ids, segments, mask, unilm=True, return_logits=all_logits)
        rows_last = (torch.arange(len(lengths), device=device), lengths - 1)
        logits = out.logits[rows_last] if all_logits else model.lm_head(
            out.last_hidden_state[rows_last])
        tokens = sample_next(logits, uniforms[active, step], top_k, top_p).tolist()
        for r, token in zip(active, tokens):
            results[r].append(token)
        active = [r for r, token in zip(active, tokens) if token != batch.end_id]
        if not active:
            break
    return results


def rows_per_chunk(model: RoFormerSim, seq_len: int, max_cache_mb: float) -> int:
    """Rows that fit ``max_cache_mb``: per row the cache holds 2 · layers · seq_len · hidden values
    and each step 4 · vocab values of logits and sampling buffers (element size of the model).

    On CPU at most ``CPU_MAX_ROWS``: beyond that the rows × vocab sampling buffers fall out of the
    caches and a sampling step costs more per row than in two smaller chunks.
    """
    cfg = model.config
    parameter = next(model.parameters())
    per_row = (2 * cfg.num_layers * seq_len * cfg.hidden_size + 4 * cfg.vocab_size)
    rows = max(1, int(max_cache_mb * 2**20 // (per_row * parameter.element_size())))
    return min(rows, CPU_MAX_ROWS) if parameter.device.type == "cpu" else rows


def sample_candidates(
    model: RoFormerSim,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    config: SamplingConfig,
    maxlen: int = 64,
    max_cache_mb: float = 1024,
    decoder: Callable[..., list[list[int]]] = decode_cached,
    progress: bool = False,
    prompts: Sequence[Sequence[int]] | None = None,
) -> list[list[list[int]]]:
    """``config.n`` sampled continuations (token ids) for each text, all texts in one batch.

    Rows (text i, sample j) are decoded by ``decoder`` (:func:`decode_cached`, or the reference
    :func:`decode_uncached`) in chunks of :func:`rows_per_chunk` rows. Each prompt is ``[CLS]
    text [SEP]`` truncated to ``maxlen`` tokens with a warning (:func:`model.encode.tokenize`),
    unless the caller passes those ``prompts`` already tokenised.
    """
    check_texts(texts)
    if maxlen + config.max_len > model.config.max_position:
        raise ValueError(f"maxlen ({maxlen}) + max_len ({config.max_len}) exceeds the model's "
                         f"max_position ({model.config.max_position})")
    if prompts is None:
        prompts = tokenize(tokenizer, texts, maxlen)
    uniforms = torch.cat([sample_uniforms(text, config) for text in texts])  # (T·n, max_len)
    chunk = rows_per_chunk(model, maxlen + config.max_len, max_cache_mb)
    total = len(texts) * config.n
    outputs: list[list[int]] = []
    with tqdm(total=total, desc="generate", unit="cand", disable=not progress) as bar:
        for start in range(0, total, chunk):
            rows = range(start, min(start + chunk, total))
            first = rows[0] // config.n
            used = [prompts[i] for i in range(first, (rows[-1] // config.n) + 1)]
            batch = DecodeBatch(used, [r // config.n - first for r in rows],
                                uniforms[start:rows.stop], tokenizer.sep_id, tokenizer.pad_id)
            outputs += decoder(model, batch, config.top_k, config.top_p)
            bar.update(len(rows))
    return [outputs[i * config.n:(i + 1) * config.n] for i in range(len(texts))]


def generate(
    model: RoFormerSim,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    config: SamplingConfig = SamplingConfig(),
    k: int = 20,
    maxlen: int = 64,
    max_cache_mb: float = 1024,
    batch_size: int = 64,
    progress: bool = False,
) -> list[dict]:
    """``[{"text": t, "candidates": [{"text": c, "score": cos}, ...]}]``, one per input, ranked.

    Candidates are the decoded samples minus duplicates, empty strings and copies of the input (as
    given or as the tokenizer round-trips its prompt); ``score`` is the cosine of pooled vectors
    (pooler head, ``maxlen`` tokens) to the input; at most ``k`` per input, highest score first.
    Inputs longer than ``maxlen`` tokens are truncated with a warning, as in
    :func:`model.encode.encode`.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    check_texts(texts)
    prompts = tokenize(tokenizer, texts, maxlen)
    samples = sample_candidates(model, tokenizer, texts, config, maxlen, max_cache_mb,
                                progress=progress, prompts=prompts)
    pools = []
    for text, prompt, ids in zip(texts, prompts, samples):
        same = {text, tokenizer.decode(prompt)}
        decoded = dict.fromkeys(tokenizer.decode(s) for s in ids)
        pools.append([c for c in decoded if c.strip() and c not in same])
    queries = encode_ids(model, tokenizer, prompts, batch_size=batch_size)
    flat = [c for pool in pools for c in pool]
    vectors = encode_ids(model, tokenizer, tokenize(tokenizer, flat, maxlen, name="candidates"),
                         batch_size=batch_size)
    results, start = [], 0
    for text, query, pool in zip(texts, queries, pools):
        cands = vectors[start:start + len(pool)]
        start += len(pool)
        scores = cands @ query
        order = sorted(range(len(pool)), key=lambda j: -scores[j])[:k]
        results.append({"text": text, "candidates": [
            {"text": pool[j], "score": round(float(scores[j]), 6)} for j in order]})
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.generate",
                                description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="directory written by save_pretrained")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="input sentences")
    p.add_argument("--input", help="UTF-8 file, one input sentence a line (instead of TEXT)")
    p.add_argument("--output", help="JSONL file to write (default: stdout)")
    p.add_argument("--n", type=int, default=100, help="samples drawn per input")
    p.add_argument("--k", type=int, default=20, help="best candidates kept per input")
    p.add_argument("--top_p", type=float, default=0.95, help="nucleus mass (1 turns it off)")
    p.add_argument("--top_k", type=int, default=0, help="most probable tokens kept (0: off)")
    p.add_argument("--max_len", type=int, default=64, help="output tokens at most")
    p.add_argument("--maxlen", type=int, default=64, help="input tokens at most, [CLS]/[SEP] incl.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max_cache_mb", type=float, default=1024,
                   help="memory for the decoding batch; rows are chunked to fit")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if bool(args.texts) == bool(args.input):
        p.error("give input sentences either as TEXT arguments or with --input FILE (not both)")
    return args


def run(argv: Sequence[str] | None = None) -> list[dict]:
    """Generate for the TEXT arguments or ``--input`` lines; JSONL to ``--output`` or stdout."""
    args = parse_args(argv)
    output = None if args.output is None else cli.check_output(args.output, "--output")
    config = SamplingConfig(n=args.n, top_p=args.top_p, top_k=args.top_k, max_len=args.max_len,
                            seed=args.seed)
    device = cli.check_device(args.device)
    texts = read_lines(args.input) if args.input else args.texts
    model, tokenizer = load_checkpoint(args.checkpoint, device)
    results = generate(model, tokenizer, texts, config, k=args.k, maxlen=args.maxlen,
                       max_cache_mb=args.max_cache_mb, progress=True)
    lines = "".join(cli.json_text(r) + "\n" for r in results)
    if output is None:
        sys.stdout.write(lines)
    else:
        output.write_text(lines, encoding="utf-8")
        print(f"wrote {len(results)} inputs to {output}", file=sys.stderr)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry: :func:`run` with errors as exit codes (:func:`model.cli.main`)."""
    return cli.main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
