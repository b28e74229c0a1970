"""Sentence vectors from a RoFormer-Sim checkpoint.

Usage::

    python -m model.encode --checkpoint DIR --input sentences.txt --out vectors.npy \\
        [--pooling pooler] [--maxlen 64] [--batch_size 64] [--no_normalize]

or from Python, ``Encoder.from_pretrained(DIR).encode(texts, batch_size=64, pooling="pooler",
normalize=True)`` → numpy array (len(texts), hidden).

Poolings (P1–P4 of the RoFormer-Sim evaluation, kexue.fm/archives/8454), with bidirectional
attention and every token in segment 0:

* ``pooler``: the pooler head, Dense on the [CLS] hidden state (``with_pool='linear'`` in the
  reference);
* ``cls``: the last layer's [CLS] hidden state;
* ``first-last-avg``: mean over the non-padding tokens of (h₁ + h_L)/2, where h₁ is the output of
  the first transformer layer and h_L of the last;
* ``last-avg``: mean over the non-padding tokens of h_L.

With ``normalize`` each vector is divided by its L2 norm, so dot products are cosines.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from tqdm import tqdm

from model import cli
from model.roformer import RoFormerSim
from model.tokenizer import Tokenizer

POOLINGS = ("pooler", "cls", "first-last-avg", "last-avg")
LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError,
               pickle.UnpicklingError)
"""What reading a damaged or foreign checkpoint folder raises (a truncated safetensors file,
bad JSON, a missing weight, a vocabulary that is not UTF-8, ...)."""
_LOG = logging.getLogger(__name__)


def load_checkpoint(checkpoint: str | Path,
                    device: str | torch.device = "cpu") -> tuple[RoFormerSim, Tokenizer]:
    """Model (in eval mode, on ``device``) and tokenizer of a ``save_pretrained`` directory.

    Raises ``FileNotFoundError`` naming the directory and what is missing in it, and
    ``ValueError`` naming it when its files cannot be read (``LOAD_ERRORS``) or its vocabulary
    and weights differ in size (token ids of one would index past the other: an
    ``IndexError`` in ``generate``, every sentence ``[UNK]`` in ``encode``).
    """
    path = Path(checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(f"--checkpoint {path} is not a directory")
    missing = [name for name in ("config.json", "vocab.txt") if not (path / name).is_file()]
    if not any((path / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        missing.append("model.safetensors or pytorch_model.bin")
    if missing:
        raise FileNotFoundError(f"--checkpoint {path} lacks {', '.join(missing)}")
    part = "config.json or weights"
    try:
        model = RoFormerSim.from_pretrained(path)
        part = "vocab.txt"
        tokenizer = Tokenizer(path / "vocab.txt")
    except LOAD_ERRORS as err:
        raise ValueError(f"--checkpoint {path}: unreadable {part}, corrupt or not RoFormer-Sim "
                         f"({type(err).__name__}: {cli.one_line(err)})") from err
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"--checkpoint {path}: vocab.txt has {tokenizer.vocab_size:,} tokens, "
                         f"config.json vocab_size is {model.config.vocab_size:,}: not one model")
    return model.to(device).eval(), tokenizer


def check_texts(texts: Sequence[str], name: str = "texts") -> None:
    """Raise ``ValueError`` naming the first empty or non-string entry of ``texts``."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is {type(text).__name__}, not str")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is empty")


def pool(
    hidden_states: Sequence[torch.Tensor],
    pooled: torch.Tensor,
    attention_mask: torch.Tensor,
    pooling: str,
) -> torch.Tensor:
    """One (B, H) vector per row from the encoder outputs (see the module docstring).

    ``hidden_states`` is (embeddings, layer 1, ..., layer L), each (B, T, H); ``pooled`` (B, H);
    ``attention_mask`` (B, T) with 1 for real tokens.
    """
    if pooling == "pooler":
        return pooled
    if pooling == "cls":
        return hidden_states[-1][:, 0]
    if pooling == "first-last-avg":
        tokens = (hidden_states[1] + hidden_states[-1]) / 2
    elif pooling == "last-avg":
        tokens = hidden_states[-1]
    else:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    weights = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1)


def check_maxlen(model: RoFormerSim, maxlen: int) -> None:
    """``ValueError`` when ``maxlen`` tokens exceed the model's position table."""
    if maxlen > model.config.max_position:
        raise ValueError(f"maxlen ({maxlen}) exceeds the model's max_position "
                         f"({model.config.max_position})")


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], maxlen: int,
             name: str = "texts") -> list[list[int]]:
    """``[CLS] text [SEP]`` ids of each text, cut to ``maxlen`` ids (the [SEP] kept last).

    The one place where model inputs are truncated: the texts that were cut are counted in one
    warning (how many, the first and the longest, in tokens) on this module's logger.
    """
    rows = [tokenizer.text_ids(text) for text in texts]
    long = [i for i, row in enumerate(rows) if len(row) + 2 > maxlen]
    if long:
        longest = max(long, key=lambda i: len(rows[i]))
        _LOG.warning("%d of %d %s longer than maxlen=%d tokens ([CLS]/[SEP] incl.) truncated: "
                     "first %s[%d], longest %s[%d] (%d tokens)", len(long), len(rows), name,
                     maxlen, name, long[0], name, longest, len(rows[longest]) + 2)
    return [tokenizer.build_inputs(row, maxlen=maxlen)[0] for row in rows]


def encode(
    model: RoFormerSim,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    batch_size: int = 64,
    pooling: str = "pooler",
    normalize: bool = True,
    maxlen: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Vectors (len(texts), H) as float32, in the order of ``texts``.

    Texts are tokenised as ``[CLS] text [SEP]`` truncated to ``maxlen`` tokens, with a warning
    (:func:`tokenize`), then encoded by :func:`encode_ids`.
    """
    check_texts(texts)
    check_maxlen(model, maxlen)
    return encode_ids(model, tokenizer, tokenize(tokenizer, texts, maxlen), batch_size, pooling,
                      normalize, progress)


@torch.no_grad()
def encode_ids(
    model: RoFormerSim,
    tokenizer: Tokenizer,
    ids: Sequence[Sequence[int]],
    batch_size: int = 64,
    pooling: str = "pooler",
    normalize: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Vectors (len(ids), H) as float32 of token id rows (``[CLS] ... [SEP]``), in their order.

    Rows are batched by length (longest first) so that padding stays small.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    device = next(model.parameters()).device
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="encode", disable=not progress, unit="batch"):
        rows = order[start:start + batch_size]
        batch = tokenizer.pad([ids[i] for i in rows], [[0] * len(ids[i]) for i in rows])
        mask = torch.from_numpy(batch["attention_mask"]).to(device)
        result = model(
            torch.from_numpy(batch["input_ids"]).to(device),
            attention_mask=mask,
            output_hidden_states=pooling in ("first-last-avg", "last-avg"),
        )
        hidden = result.hidden_states or (result.last_hidden_state,)
        vectors = pool(hidden, result.pooled, mask, pooling).float()
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        out[rows] = vectors.cpu().numpy()
    return out


@dataclass(frozen=True)
class Encoder:
    """A loaded checkpoint that turns sentences into vectors::

        encoder = Encoder.from_pretrained("runs/tiny/final")
        vectors = encoder.encode(["你好", "您好"])  # (2, hidden) float32, unit rows

    :meth:`encode` is :func:`encode` with the model and tokenizer bound.
    """

    model: RoFormerSim
    tokenizer: Tokenizer

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path,
                        device: str | torch.device = "cpu") -> Encoder:
        """Load a ``save_pretrained`` directory (see :func:`load_checkpoint` for its errors)."""
        return cls(*load_checkpoint(checkpoint, device))

    def encode(self, texts: Sequence[str], **options) -> np.ndarray:
        """Vectors (len(texts), H) as float32, in the order of ``texts``: :func:`encode` with this
        model and tokenizer, taking the same keyword options (``batch_size=64``,
        ``pooling="pooler"``, ``normalize=True``, ``maxlen=64``, ``progress=False``)."""
        return encode(self.model, self.tokenizer, texts, **options)


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file, one sentence a line (:func:`model.cli.text_lines`); a blank
    line or an empty file raises ``ValueError`` naming the file (and line)."""
    lines = cli.text_lines(path)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(f"{path}:{number}: empty line (one sentence a line expected)")
    if not lines:
        raise ValueError(f"{path} holds no sentences")
    return lines


def npy_path(out: str | Path) -> Path:
    """Where ``np.save(out, ...)`` writes: ``out`` with ``.npy`` appended unless it ends so."""
    out = Path(out)
    return out if out.name.endswith(".npy") else out.with_name(out.name + ".npy")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.encode", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="directory written by save_pretrained")
    p.add_argument("--input", required=True, help="UTF-8 text file, one sentence a line")
    p.add_argument("--out", required=True,
                   help="output .npy file, float32 (n, hidden); .npy is appended if missing")
    p.add_argument("--pooling", choices=POOLINGS, default="pooler")
    p.add_argument("--maxlen", type=int, default=64, help="tokens per sentence incl. [CLS]/[SEP]")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--no_normalize", action="store_true", help="keep raw (unit-less) vectors")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> Path:
    """Encode ``--input`` into ``--out``; returns the ``.npy`` path written."""
    args = parse_args(argv)
    out = cli.check_output(npy_path(args.out), "--out")
    device = cli.check_device(args.device)
    texts = read_lines(args.input)
    encoder = Encoder.from_pretrained(args.checkpoint, device)
    vectors = encoder.encode(texts, batch_size=args.batch_size, pooling=args.pooling,
                             normalize=not args.no_normalize, maxlen=args.maxlen, progress=True)
    np.save(out, vectors)
    print(f"wrote {vectors.shape[0]} vectors of dimension {vectors.shape[1]} "
          f"({args.pooling}) to {out}", file=sys.stderr)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry: :func:`run` with errors as exit codes (:func:`model.cli.main`)."""
    return cli.main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
