"""Candidates/s of the batched key/value-cache generator against the reference decoding approach.

Reference (bert4keras ``AutoRegressiveDecoder.random_sample`` as used by roformer-sim's
``gen_synonyms``): one input at a time, its n samples in one batch, the whole sequence
``[CLS] a [SEP] b_1..b_t`` recomputed at every step (no cache), the LM head on every position
(as bert4keras' ``last_token`` of the full seq2seq output). ``ref-last`` is the same with the LM
head on the last position only, a stronger baseline. Ours: all inputs × n samples in one batch,
the prompt encoded once per input, one new token per row per step against a key/value cache.
All three share the sampler and the per-sample uniforms, so they draw the same candidates up to
floating-point rounding (the share of identical samples is printed). Inputs are real LCQMC
sentences. Models are randomly initialised (seeded) unless ``--checkpoint`` is given: a random
model's near-uniform next-token distribution rarely yields ``[SEP]``, so almost every sample runs
the full ``--max_len`` steps (the same work for every method), and its top-p nucleus spans most
of the vocabulary, which makes the shared sampler costlier than a trained model's.

    python benchmarks/generate_bench.py [--configs tiny small] [--inputs 8 2] [--n 100]
        [--max_len 32] [--threads N] [--repeat R] [--checkpoint DIR]

Each method is timed ``--repeat`` times, the runs of the three methods interleaved, and the
fastest run of each is kept (a shared machine's slow spells then inflate no method's time).
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import torch

from model.encode import load_checkpoint
from model.generate import SamplingConfig, decode_cached, decode_uncached, sample_candidates
from model.roformer import RoFormerSim, RoFormerSimConfig
from model.sts import read_sts
from model.tokenizer import Tokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench(name: str, model: RoFormerSim, tokenizer: Tokenizer, texts: list[str],
          args: argparse.Namespace) -> None:
    cfg = model.config
    sampling = SamplingConfig(n=args.n, top_p=args.top_p, max_len=args.max_len, seed=0)
    warm_up = SamplingConfig(n=8, top_p=args.top_p, max_len=4)
    for decoder in (decode_cached, decode_uncached):
        sample_candidates(model, tokenizer, texts[:1], warm_up, decoder=decoder)

    def one_at_a_time(decoder):
        return [sample_candidates(model, tokenizer, [text], sampling, decoder=decoder)[0]
                for text in texts]

    methods = {
        "ref": partial(one_at_a_time, decode_uncached),
        "ref-last": partial(one_at_a_time, partial(decode_uncached, all_logits=False)),
        "ours": partial(sample_candidates, model, tokenizer, texts, sampling),
    }
    seconds, samples = dict.fromkeys(methods, float("inf")), {}
    for _ in range(args.repeat):  # interleaved, so that a slow spell of the machine hits all
        for method, run in methods.items():
            samples[method], elapsed = timed(run)
            seconds[method] = min(seconds[method], elapsed)
    ours = samples["ours"]
    same = [sum(a == b for rows_a, rows_b in zip(ours, samples[method])
                for a, b in zip(rows_a, rows_b)) for method in ("ref", "ref-last")]
    total = len(texts) * args.n
    tokens = sum(len(s) for rows in ours for s in rows) / total
    t_full, t_last, t_ours = seconds["ref"], seconds["ref-last"], seconds["ours"]
    print(f"{name:6s} {cfg.hidden_size:4d}x{cfg.num_layers:<2d} {len(texts):3d} x {args.n:<4d}"
          f"{tokens:7.1f} {total / t_full:9.1f} {total / t_last:9.1f} {total / t_ours:9.1f} "
          f"{t_full / t_ours:8.1f}x {t_last / t_ours:8.1f}x   {same[0]}/{total}, "
          f"{same[1]}/{total}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=["tiny", "small"],
                   help="random-init presets to run (ignored with --checkpoint)")
    p.add_argument("--inputs", nargs="+", type=int, default=[8, 2],
                   help="number of inputs per config (same order as --configs)")
    p.add_argument("--checkpoint", type=Path, help="benchmark this trained checkpoint instead")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--max_len", type=int, default=32)
    p.add_argument("--top_p", type=float, default=0.95)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--repeat", type=int, default=1,
                   help="time every method this many times, interleaved, and keep the best")
    p.add_argument("--data", type=Path, default=SHARED)
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    task = read_sts(args.data / "sts" / "LCQMC.valid.data", limit=200)
    texts = list(dict.fromkeys(task.text_a))
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, top_p {args.top_p}, "
          f"max_len {args.max_len}, best of {args.repeat}; candidates/s (ref: no cache, LM head "
          f"on all positions; ref-last: on the last one)")
    print(f"{'model':6s} {'HxL':7s} {'inputs x n':10s} {'out tok':>7s} {'ref':>9s} "
          f"{'ref-last':>9s} {'ours':>9s} {'vs ref':>9s} {'vs last':>9s}   identical samples")
    if args.checkpoint:
        model, tokenizer = load_checkpoint(args.checkpoint, args.device)
        bench(args.checkpoint.name, model, tokenizer, texts[:args.inputs[0]], args)
        return
    if len(args.inputs) != len(args.configs):
        p.error("--inputs needs one count per --configs entry")
    tokenizer = Tokenizer(args.data / "vocab" / "roformer-sim-char" / "vocab.txt")
    for name, inputs in zip(args.configs, args.inputs):
        torch.manual_seed(0)
        cfg = RoFormerSimConfig.preset(name, vocab_size=tokenizer.vocab_size)
        model = RoFormerSim(cfg).to(args.device).eval()
        bench(name, model, tokenizer, texts[:inputs], args)


if __name__ == "__main__":
    main()
