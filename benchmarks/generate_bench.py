"""Candidates/s of the batched key/value-cache generator against the reference decoding approach.

Reference (bert4keras ``AutoRegressiveDecoder.random_sample`` as used by roformer-sim's
``gen_synonyms``): one input at a time, its n samples in one batch, the whole sequence
``[CLS] a [SEP] b_1..b_t`` recomputed at every step (no cache). Ours: all inputs × n samples in
one batch, the prompt encoded once per input, one new token per row per step read against a
key/value cache. Both use the same sampler and per-sample uniforms, so they must return the same
candidates (checked and printed); inputs are real LCQMC sentences. Models are randomly
initialised (seeded): their near-uniform next-token distributions rarely produce ``[SEP]``, so
nearly every sample runs the full ``--max_len`` steps — the same work for both sides.

    python benchmarks/generate_bench.py [--configs tiny small] [--n 100] [--max_len 32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from model.generate import SamplingConfig, sample_candidates
from model.roformer import RoFormerSim, RoFormerSimConfig
from model.sts import read_sts
from model.tokenizer import Tokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench(name: str, inputs: int, args: argparse.Namespace, tokenizer: Tokenizer, texts) -> None:
    torch.manual_seed(0)
    cfg = RoFormerSimConfig.preset(name, vocab_size=tokenizer.vocab_size, dropout=0.0,
                                   attention_dropout=0.0)
    model = RoFormerSim(cfg).to(args.device).eval()
    texts = texts[:inputs]
    sampling = SamplingConfig(n=args.n, top_p=args.top_p, max_len=args.max_len, seed=0)
    ours, t_ours = timed(lambda: sample_candidates(model, tokenizer, texts, sampling))
    ref, t_ref = timed(lambda: [sample_candidates(model, tokenizer, [text], sampling,
                                                  use_cache=False)[0] for text in texts])
    total = len(texts) * args.n
    tokens = sum(len(s) for rows in ours for s in rows)
    print(f"{name:6s} {cfg.hidden_size:4d}x{cfg.num_layers:<2d} {len(texts):3d} x {args.n:<4d}"
          f"{tokens / total:9.1f} {total / t_ref:12.1f} {total / t_ours:12.1f} "
          f"{t_ref / t_ours:8.1f}x  {'yes' if ours == ref else 'NO'}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=["tiny", "small"])
    p.add_argument("--inputs", nargs="+", type=int, default=[8, 2],
                   help="number of inputs per config (same order as --configs)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--max_len", type=int, default=32)
    p.add_argument("--top_p", type=float, default=0.95)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", type=Path, default=SHARED)
    args = p.parse_args(argv)
    if len(args.inputs) != len(args.configs):
        p.error("--inputs needs one count per --configs entry")
    tokenizer = Tokenizer(args.data / "vocab" / "roformer-sim-char" / "vocab.txt")
    task = read_sts(args.data / "sts" / "LCQMC.valid.data", limit=200)
    texts = list(dict.fromkeys(task.text_a))
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, top_p {args.top_p}, "
          f"max_len {args.max_len}")
    print(f"{'config':6s} {'HxL':7s} {'inputs x n':10s} {'out tok':>8s} {'ref cand/s':>12s} "
          f"{'ours cand/s':>12s} {'speedup':>9s}  same output")
    for name, inputs in zip(args.configs, args.inputs):
        bench(name, inputs, args, tokenizer, texts)


if __name__ == "__main__":
    main()
