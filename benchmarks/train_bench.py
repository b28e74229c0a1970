"""Training throughput: our RoFormer-Sim step vs the same step on ``transformers.RoFormerModel``,
and (``--nproc N``) N DistributedDataParallel ranks vs 1 on the same global batch.

    python benchmarks/train_bench.py --config small --batch_size 16 --steps 4     # CPU
    python benchmarks/train_bench.py --config base --batch_size 96 --precision bf16 --compile
    python benchmarks/train_bench.py --config small --batch_size 16 --nproc 2 --threads 1

``--nproc N`` times ``Trainer.train_step`` on the whole global batch in one process, then on N
gloo (CPU) or nccl (CUDA: one GPU per rank) ranks that each take ``batch_size / N`` rows, gather
the pooled vectors for the contrastive loss and average gradients (``model.train``). Ideal
scaling is N × the 1-rank tokens/s; the gap is the communication and synchronisation overhead
(on CPU each rank uses ``--threads`` threads, so compare on a machine with N × threads free
cores).

Both steps do the same work on the same batch: forward under the UniLM mask, seq2seq
cross-entropy on segment b + in-batch contrastive loss on the pooled [CLS] vectors, backward,
AdamW update (lr 1e-5, weight decay 0.01). "ours" is ``model.train.Trainer.train_step``
(SDPA attention with a boolean mask, fused q/k/v, LM head only at the positions that predict a
segment-b token, fused AdamW, optional ``torch.compile``); the baseline is
``transformers.RoFormerForMaskedLM`` with eager attention fed the UniLM mask as a 4D additive
mask, a linear pooler on [CLS], the LM head on every position, and ``torch.optim.AdamW``.
Both start from the same weights (dropout off for the check): the first-step losses are printed
side by side.

Batches are real text: pairs of answers to the same question from ``shared/data/qa`` (long
enough that each segment fills ``--maxlen`` tokens, so rows are ~2 × maxlen tokens), noised and
collated exactly as in training.

Throughput is real (non-padding) tokens per second of the fastest of ``--rounds`` alternating
rounds of ``--steps`` steps (after ``--warmup`` steps each): the fastest round is the one least
disturbed by other load on the machine. The process CPU time is printed beside wall time: with
``--threads 1`` on a shared machine it is the steadier measure (it does not count time spent
waiting for a core). Model FLOPs per step (the usual 6N rule,
Kaplan et al. 2020 / PaLM appendix B, counted identically for both):
``6 · P_enc · B·L + 12 · layers · H · B·L² + 6 · (H·E + V·E) · N_tgt`` with P_enc the
encoder + pooler matmul parameters, B·L padded positions, N_tgt the predicted segment-b tokens
(the LM head's useful work). MFU = FLOPs/s ÷ ``--peak_tflops`` (default 989 on an H100 SXM in
bf16 dense, none on CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.data import PairCollator  # noqa: E402
from model.distributed import World  # noqa: E402
from model.losses import contrastive_loss, seq2seq_loss, seq2seq_targets  # noqa: E402
from model.noise import BartNoise  # noqa: E402
from model.roformer import RoFormerSim, RoFormerSimConfig, attention_bias  # noqa: E402
from model.tokenizer import Tokenizer  # noqa: E402
from model.train import TrainConfig, Trainer, autocast  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
H100_BF16_TFLOPS = 989.0


class HFRoFormerSim(nn.Module):
    """``transformers`` RoFormer (eager attention) + MLM head + a linear [CLS] pooler."""

    def __init__(self, cfg: RoFormerSimConfig) -> None:
        super().__init__()
        from transformers import RoFormerConfig, RoFormerForMaskedLM

        hf_cfg = RoFormerConfig(**cfg.to_hf_dict())
        hf_cfg._attn_implementation = "eager"
        self.mlm = RoFormerForMaskedLM(hf_cfg)
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def load_from(self, ours: RoFormerSim) -> None:
        state = ours.hf_state_dict()
        result = self.mlm.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if k != "cls.predictions.decoder.weight"
                   and not k.endswith("decoder.bias")]
        if missing:
            raise RuntimeError(f"transformers model lacks weights for {missing}")
        self.pooler.load_state_dict(ours.pooler.state_dict())

    def forward(self, ids, segments, mask4d):
        h = self.mlm.roformer(input_ids=ids, token_type_ids=segments,
                              attention_mask=mask4d).last_hidden_state  # (B, L, H)
        return self.pooler(h[:, 0]), self.mlm.cls(h)  # (B, H), (B, L, V)


def additive_unilm_mask(batch: dict[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """(B, 1, L, L): 0 where visible (UniLM rule and not padding), the dtype's minimum elsewhere."""
    ids = batch["input_ids"]
    visible = attention_bias(batch["attention_mask"], batch["token_type_ids"], True,
                             ids.shape[1], device=ids.device)
    return torch.zeros(visible.shape, dtype=dtype, device=ids.device).masked_fill(
        ~visible, torch.finfo(dtype).min)


class HFStep:
    """The baseline training step: full-sequence logits, additive 4D mask, plain AdamW."""

    def __init__(self, model: HFRoFormerSim, precision: str, device: torch.device) -> None:
        self.model, self.precision, self.device = model, precision, device
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, eps=1e-6,
                                           weight_decay=0.01)
        self.mask_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16,
                           "fp16": torch.float16}[precision]

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, segments, mask = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
        with autocast(self.precision, self.device):
            pooled, logits = self.model(ids, segments, additive_unilm_mask(batch, self.mask_dtype))
        return seq2seq_loss(logits.float(), ids, segments, mask) + contrastive_loss(pooled.float())

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.model.train()
        loss = self.loss(batch)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.item()}


def qa_batch(tokenizer: Tokenizer, batch_size: int, maxlen: int, seed: int) -> dict:
    """``batch_size`` rows (a→b, b→a) from pairs of answers to the same real question."""
    pairs = []
    with open(SHARED / "qa" / "qa_sample.jsonl", encoding="utf-8") as lines:
        for line in lines:
            answers = [a for a in json.loads(line)["answers"] if len(a) >= maxlen]
            if len(answers) >= 2:
                pairs.append((answers[0], answers[1]))
            if len(pairs) == batch_size // 2:
                break
    if len(pairs) < batch_size // 2:
        raise SystemExit(f"only {len(pairs)} long answer pairs for --batch_size {batch_size}")
    rows = [row for a, b in pairs for row in ((a, b), (b, a))]
    collate = PairCollator(tokenizer, maxlen, BartNoise(tokenizer))
    return collate(rows, np.random.default_rng(seed))


def model_flops(cfg: RoFormerSimConfig, batch: dict[str, torch.Tensor]) -> float:
    """Model FLOPs of one training step (forward + backward), see the module docstring."""
    B, L = batch["input_ids"].shape
    H, E, V, n = cfg.hidden_size, cfg.embed_size, cfg.vocab_size, cfg.num_layers
    encoder = n * (4 * H * H + 2 * H * cfg.intermediate_size) + H * H  # + pooler
    if E != H:
        encoder += E * H
    _, targets = seq2seq_targets(batch["input_ids"], batch["token_type_ids"],
                                 batch["attention_mask"])
    return (6 * encoder * B * L + 12 * n * H * B * L * L
            + 6 * (H * E + V * E) * targets.numel())


def timed(step, batch, steps: int, device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for ``steps`` calls of ``step(batch)``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(["-"], Path("-"), batch_size=args.batch_size, lr=1e-5,
                       compile=args.compile)


def rank_steps(rank: int, world_size: int, store: str, args: argparse.Namespace,
               state: dict, batch: dict, out: str) -> None:
    """One rank of ``--nproc``: ``batch_size / N`` rows, best wall time of the timed rounds."""
    import torch.distributed as dist

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{store}",
                            rank=rank, world_size=world_size)
    try:
        seconds = ddp_seconds(args, state, batch, World(rank, world_size), device)
        if rank == 0:
            Path(out).write_text(json.dumps(seconds))
    finally:
        dist.destroy_process_group()


def ddp_seconds(args: argparse.Namespace, state: dict, batch: dict, world: World,
                device: torch.device) -> list[float]:
    """[wall, process CPU] seconds of the fastest of ``--rounds`` × ``--steps`` steps of this
    rank's share of ``batch`` (ranks start each round together), averaged over ranks."""
    model = RoFormerSim(RoFormerSimConfig.from_dict(state["config"])).to(device)
    model.load_state_dict(state["weights"])
    trainer = Trainer(model, bench_config(args), device, args.precision, world=world)
    rows = args.batch_size // world.size
    mine = {k: v[world.rank * rows:(world.rank + 1) * rows].to(device) for k, v in batch.items()}
    for _ in range(args.warmup):
        trainer.train_step(mine)
    best = (math.inf, math.inf)
    for _ in range(args.rounds):
        world.barrier()
        best = min(best, timed(trainer.train_step, mine, args.steps, device))
    return (world.sum(torch.tensor(best, device=device)) / world.size).tolist()


def ddp_main(args: argparse.Namespace, cfg: RoFormerSimConfig, batch: dict) -> dict[str, float]:
    """``--nproc N``: tokens/s of N ranks vs 1 on the same global batch."""
    import tempfile

    import torch.multiprocessing as mp

    torch.manual_seed(args.seed)
    state = {"config": cfg.to_dict(), "weights": RoFormerSim(cfg).state_dict()}
    one, one_cpu = ddp_seconds(args, state, batch, World(), torch.device(args.device))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seconds.json"
        mp.start_processes(rank_steps, (args.nproc, str(Path(tmp) / "store"), args, state,
                                        batch, str(out)),
                           nprocs=args.nproc, start_method="spawn")
        many, many_cpu = json.loads(out.read_text())
    tokens = int(batch["attention_mask"].sum()) * args.steps
    result = {"tokens_per_s_1": tokens / one, f"tokens_per_s_{args.nproc}": tokens / many}
    result["scaling"] = one / many
    B, L = batch["input_ids"].shape
    print(f"device {args.device}, {args.threads or torch.get_num_threads()} thread(s) per "
          f"process, torch {torch.__version__}, config {args.config}, precision "
          f"{args.precision}")
    print(f"global batch {B} rows × {L} positions, {tokens // args.steps} real tokens/step; "
          f"fastest of {args.rounds} rounds × {args.steps} steps after {args.warmup} warm-up")
    print(f"{'1 rank':>10}: {result['tokens_per_s_1']:10.0f} tokens/s, "
          f"{one / args.steps * 1e3:8.1f} ms/step (process CPU {one_cpu / args.steps * 1e3:8.1f}"
          " ms/step)")
    print(f"{f'{args.nproc} ranks':>10}: {result[f'tokens_per_s_{args.nproc}']:10.0f} tokens/s, "
          f"{many / args.steps * 1e3:8.1f} ms/step (process CPU per rank "
          f"{many_cpu / args.steps * 1e3:8.1f} ms/step; {B // args.nproc} rows per rank)")
    print(f"scaling {args.nproc} ranks / 1: {result['scaling']:.2f}x (ideal {args.nproc}x; "
          f"efficiency {100 * result['scaling'] / args.nproc:.0f} %)")
    return result


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=("tiny", "small", "base"))
    p.add_argument("--batch_size", type=int, default=16, help="rows per step (even)")
    p.add_argument("--maxlen", type=int, default=64, help="tokens per sentence (rows ≤ 2×)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per model")
    p.add_argument("--steps", type=int, default=3, help="timed steps per round and model")
    p.add_argument("--rounds", type=int, default=2, help="alternating timing rounds")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--peak_tflops", type=float,
                   help="device peak for MFU (default: 989 on CUDA = H100 bf16 dense)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nproc", type=int, default=0,
                   help="time N DDP ranks against 1 on the same global batch (ours only)")
    args = p.parse_args(argv)
    if args.nproc and args.batch_size % (2 * args.nproc):
        p.error(f"--batch_size {args.batch_size} must give each of {args.nproc} ranks an even "
                "number of rows")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    peak = args.peak_tflops or (H100_BF16_TFLOPS if device.type == "cuda" else None)

    tokenizer = Tokenizer(SHARED / "vocab" / "roformer-sim-char" / "vocab.txt")
    cfg = RoFormerSimConfig.preset(args.config, vocab_size=tokenizer.vocab_size, dropout=0.0,
                                   attention_dropout=0.0)
    batch = {k: v.to(device) for k, v in
             qa_batch(tokenizer, args.batch_size, args.maxlen, args.seed).items()}
    if args.nproc:
        return ddp_main(args, cfg, {k: v.cpu() for k, v in batch.items()})
    torch.manual_seed(args.seed)
    ours = RoFormerSim(cfg).to(device)
    hf = HFRoFormerSim(cfg).to(device)
    hf.load_from(ours)

    our_step = Trainer(ours, bench_config(args), device, args.precision)
    hf_step = HFStep(hf, args.precision, device)
    with torch.no_grad():
        ours.train()
        out = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                   unilm=True)
        our_loss = (seq2seq_loss(out.logits.float(), batch["input_ids"], batch["token_type_ids"],
                                 batch["attention_mask"]) + contrastive_loss(out.pooled)).item()
        hf_loss = hf_step.loss(batch).item()

    for _ in range(args.warmup):
        our_step.train_step(batch)
        hf_step.train_step(batch)
    best = {"ours": [math.inf, math.inf], "hf": [math.inf, math.inf]}
    for _ in range(args.rounds):
        for label, step in (("ours", our_step.train_step), ("hf", hf_step.train_step)):
            best[label] = [min(old, new) for old, new in
                           zip(best[label], timed(step, batch, args.steps, device))]

    n = args.steps
    tokens = int(batch["attention_mask"].sum())
    flops = model_flops(cfg, batch)
    result = {f"{label}_tokens_per_s": tokens * n / best[label][0] for label in best}
    result["speedup"] = result["ours_tokens_per_s"] / result["hf_tokens_per_s"]
    result["speedup_cpu_time"] = best["hf"][1] / best["ours"][1]
    B, L = batch["input_ids"].shape
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {name} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
          f"config {args.config}, precision {args.precision}, compile {args.compile}")
    print(f"batch {B} rows × {L} positions, {tokens} real tokens/step; fastest of "
          f"{args.rounds} rounds × {args.steps} steps after {args.warmup} warm-up")
    print(f"first-step loss (same weights, dropout off): ours {our_loss:.6f}  "
          f"transformers {hf_loss:.6f}")
    print(f"model FLOPs/step {flops / 1e9:.1f} G "
          "(6·P_enc·B·L + 12·layers·H·B·L² + 6·(H·E+V·E)·N_tgt)")
    for label, title in (("ours", "ours"), ("hf", "transformers eager")):
        wall, cpu = best[label]
        tflops = flops * n / wall / 1e12
        mfu = f", MFU {100 * tflops / peak:.1f}%" if peak else ""
        print(f"{title:>20}: {tokens * n / wall:10.0f} tokens/s, {wall / n * 1e3:8.1f} ms/step "
              f"(process CPU {cpu / n * 1e3:8.1f} ms/step), {tflops:.3f} TFLOP/s{mfu}")
    print(f"speedup ours / transformers: {result['speedup']:.2f}x wall clock, "
          f"{result['speedup_cpu_time']:.2f}x process CPU time")
    return result


if __name__ == "__main__":
    main()
