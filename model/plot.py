"""A training run's curves as one PNG: loss parts, learning rate and the eval metrics over steps.

    python -m model.plot runs/NAME [--out FILE]      # default runs/NAME/metrics.png

Panels: ``loss``, ``loss_gen``, ``loss_sim`` (the eval records' ``valid_*`` of each as dashed
markers in its colour); ``lr``; the ``sts_TASK`` Spearman values of the eval records, when there
are any. The trainer writes the same plot at the end of every run (``model.train``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

from model.metrics import EVAL, read_metrics

PLOT_FILE = "metrics.png"


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the PNG of ``run_dir/metrics.jsonl`` to ``out`` (default ``run_dir/metrics.png``);
    ``ValueError`` when the run has no training record yet. A record without some curve's key
    (hand-edited, or from an older version) leaves a gap in that curve (was a ``KeyError``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    train = [r for r in read_metrics(run_dir) if isinstance(r.get("step"), int)]
    evals = read_metrics(run_dir, EVAL)
    if not train:
        raise ValueError(f"{run_dir}: no training records in metrics.jsonl")
    sts = sorted({k for r in evals for k in r if k.startswith("sts_")})
    panels = 3 if sts else 2
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.6 * panels), sharex=True)
    steps = [r["step"] for r in train]
    for color, key in enumerate(("loss", "loss_gen", "loss_sim")):
        axes[0].plot(steps, [r.get(key, math.nan) for r in train], label=key, linewidth=1,
                     color=f"C{color}")
        points = [(r["step"], r[f"valid_{key}"]) for r in evals if f"valid_{key}" in r]
        if points:
            axes[0].plot(*zip(*points), marker="o", linestyle="--", label=f"valid_{key}",
                         color=f"C{color}")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize="small", ncol=2)
    axes[1].plot(steps, [r.get("lr", math.nan) for r in train], color="tab:gray")
    axes[1].set_ylabel("lr")
    for key in sts:
        points = [(r["step"], r[key]) for r in evals if key in r]
        axes[2].plot(*zip(*points), marker="o", label=key)
    if sts:
        axes[2].set_ylabel("Spearman ρ")
        axes[2].legend(fontsize="small", ncol=2)
    axes[-1].set_xlabel("step")
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    target = Path(out) if out is not None else run_dir / PLOT_FILE
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


def main(argv: Sequence[str] | None = None) -> Path:
    p = argparse.ArgumentParser(prog="python -m model.plot", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="run directory (holds metrics.jsonl)")
    p.add_argument("--out", type=Path, help=f"PNG file (default RUN/{PLOT_FILE})")
    args = p.parse_args(argv)
    try:
        target = plot_run(args.run, args.out)
    except (ValueError, OSError) as err:
        raise SystemExit(f"model.plot: error: {err}") from err
    print(f"wrote {target}")
    return target


if __name__ == "__main__":
    main()
