"""Stream pair Parquet shards into training batches of rows a→b, b→a with an exact resume point.

Layout of the stream (all of it a function of ``seed`` and the reader layout):

* **pieces**: every non-empty row group of every shard (sorted by path), split in halves while
  there are fewer pieces than readers; each epoch the pieces are permuted (seeded by epoch) and
  reader ``g`` of ``G = world_size × num_workers`` takes pieces ``g, g + G, ...``, so every row is
  read by exactly one reader per epoch (no loss, no duplication);
* **shuffle**: a reader reads its pieces in windows of ``shuffle_buffer`` pairs and emits each
  window in a seeded random order (permutation seeded by seed, epoch, reader and window index);
  windows never cross an epoch;
* **rows**: each pair (a, b) gives the rows a→b and b→a at positions 2k and 2k+1 of a batch, so
  the contrastive target of row 2k is 2k+1; a batch holds ``batch_size / 2`` whole pairs;
* **position**: after each batch a reader is at (epoch, window, cursor of the window start,
  pairs of the window already emitted, batches so far). Re-reading that window, permuting it
  with the same seed and skipping the emitted pairs resumes the exact same sequence, and the
  noise of batch n is seeded by (seed, reader, n), so a resumed stream equals an uninterrupted one.

With ``epochs=None`` the stream cycles forever (batches run on across epoch ends, so every
batch is full); with a number it stops after that many epochs (the last batch may be short).
Required columns: ``text_a``, ``text_b`` (strings); other columns are ignored.
"""

from __future__ import annotations

import copy
import glob
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from model.noise import BartNoise
from model.tokenizer import Tokenizer

REQUIRED_COLUMNS = ("text_a", "text_b")
READ_BATCH_ROWS = 4096
Pair = tuple[str, str]


def resolve_shards(
    data: str | Path | Sequence[str | Path], split: str | None = "train"
) -> list[Path]:
    """Shard paths of ``data``: a glob, a ``manifest.json``, a folder (its ``manifest.json`` if
    it has one, else its ``*.parquet``), or a list of those.

    A manifest (as ``pipelines.build_corpus`` writes it) lists its shards under ``"shards"``:
    names relative to the manifest's folder, as strings, as objects with a ``file``/``path``/
    ``name`` key, or as the keys of a mapping. Objects with a ``"split"`` key are kept only
    when it equals ``split`` (``None`` keeps all).
    """
    specs = [data] if isinstance(data, str | Path) else list(data)
    paths: list[Path] = []
    for spec in specs:
        spec = Path(spec)
        if spec.is_dir():
            manifest = spec / "_manifest.json"
            spec = manifest if manifest.is_file() else spec / "*.parquet"
        if spec.suffix == ".json":
            paths.extend(_manifest_shards(spec, split))
            continue
        matched = sorted(glob.glob(str(spec), recursive=True))
        if not matched:
            raise FileNotFoundError(f"data {str(spec)!r} matches no files")
        paths.extend(Path(p) for p in matched)
    if not paths:
        raise FileNotFoundError(f"data {data!r} names no shards")
    return paths


def _manifest_shards(manifest: Path, split: str | None) -> list[Path]:
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest {manifest} does not exist")
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["shards"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"manifest {manifest}: expected a JSON object with 'shards' ({err})")
    if isinstance(entries, dict):
        entries = list(entries)
    names = []
    for entry in entries:
        if isinstance(entry, dict):
            if split is not None and entry.get("split", split) != split:
                continue
            entry = next((entry[k] for k in ("file", "path", "name") if k in entry), None)
        if not isinstance(entry, str):
            raise ValueError(f"manifest {manifest}: cannot read a shard path from {entry!r}")
        names.append(entry)
    paths = [manifest.parent / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"manifest {manifest} lists missing shards: {missing}")
    if not paths:
        raise ValueError(f"manifest {manifest} lists no shards of split {split!r}")
    return paths


def open_shard(path: Path) -> pq.ParquetFile:
    """Open ``path`` and check it has string columns ``text_a`` and ``text_b`` (an empty shard
    may have them untyped)."""
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"shard {path}: not a readable Parquet file ({err})") from err
    schema = parquet.schema_arrow
    for name in REQUIRED_COLUMNS:
        if name not in schema.names:
            raise ValueError(f"shard {path}: column {name!r} missing (has {schema.names})")
        kind = schema.field(name).type
        empty = parquet.metadata.num_rows == 0 and pa.types.is_null(kind)
        if not (empty or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise ValueError(f"shard {path}: column {name!r} is {kind}, expected string")
    return parquet


def iter_shard_pairs(
    path: Path, row_group: int | None = None, start: int = 0, stop: int | None = None
) -> Iterator[Pair]:
    """(text_a, text_b) of rows ``start:stop`` of one row group (of the whole shard if None)."""
    parquet = open_shard(path)
    groups = None if row_group is None else [row_group]
    row = 0
    try:
        for batch in parquet.iter_batches(READ_BATCH_ROWS, row_groups=groups,
                                          columns=list(REQUIRED_COLUMNS)):
            end = row + batch.num_rows
            if end > start and (stop is None or row < stop):
                lo, hi = max(start - row, 0), batch.num_rows if stop is None else stop - row
                texts_a = batch.column(0).slice(lo, hi - lo).to_pylist()
                texts_b = batch.column(1).slice(lo, hi - lo).to_pylist()
                for i, (a, b) in enumerate(zip(texts_a, texts_b, strict=True)):
                    if a is None or b is None:
                        where = "" if row_group is None else f" of row group {row_group}"
                        raise ValueError(f"shard {path}: null text in row {row + lo + i}{where}")
                    yield a, b
            row = end
            if stop is not None and row >= stop:
                break
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"shard {path}: unreadable data ({err})") from err


@dataclass(frozen=True)
class Piece:
    """Rows ``start:stop`` of row group ``row_group`` of shard ``path``."""

    path: str
    row_group: int
    start: int
    stop: int


def list_pieces(paths: Sequence[Path], min_pieces: int = 1) -> list[Piece]:
    """Non-empty row groups of ``paths`` (each checked), halved until ``min_pieces`` exist."""
    pieces = []
    for path in paths:
        metadata = open_shard(path).metadata
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            if rows:
                pieces.append(Piece(str(path), group, 0, rows))
    if not pieces:
        raise ValueError(f"no rows in the {len(paths)} shard(s) {[str(p) for p in paths][:5]}")
    while len(pieces) < min_pieces:
        i = max(range(len(pieces)), key=lambda k: pieces[k].stop - pieces[k].start)
        big = pieces[i]
        if big.stop - big.start < 2:
            raise ValueError(f"{len(pieces)} row(s) cannot feed {min_pieces} readers "
                             "(world_size × num_workers): use fewer workers or more data")
        middle = (big.start + big.stop) // 2
        pieces[i: i + 1] = [Piece(big.path, big.row_group, big.start, middle),
                            Piece(big.path, big.row_group, middle, big.stop)]
    return pieces


@dataclass
class ReaderState:
    """Position of one reader after a batch: in ``epoch``, window number ``window`` starts at
    row ``row`` of the reader's piece number ``piece`` (of file ``shard``) and ``emitted`` of its
    pairs are already out; ``batches`` counts the reader's batches (it seeds the noise)."""

    epoch: int = 0
    window: int = 0
    piece: int = 0
    row: int = 0
    emitted: int = 0
    batches: int = 0
    shard: str = ""


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


class PairCollator:
    """Rows → padded ``int64`` tensors ``input_ids, token_type_ids, attention_mask`` of
    ``[CLS] a [SEP] b [SEP]``; segment a of each row gets ``noise`` (seeded by ``rng``).

    ``maxlen`` is per sentence: a row keeps at most ``2 × maxlen`` tokens, dropping the last
    token of the longer segment first (the reference's ``truncate_sequences(maxlen * 2, ...)``).
    """

    def __init__(self, tokenizer: Tokenizer, maxlen: int = 64, noise: BartNoise | None = None):
        self.tokenizer = tokenizer
        self.maxlen = maxlen
        self.noise = noise

    def __call__(
        self, rows: Sequence[Pair], rng: np.random.Generator | int | None = None
    ) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        if self.noise is not None:
            if rng is None:
                raise ValueError("PairCollator with noise needs an rng (a Generator or a seed)")
            rng = np.random.default_rng(rng)
        ids, segments = [], []
        for a, b in rows:
            ids_a = tok.text_ids(a) if self.noise is None else self.noise(a, rng)
            row_ids, row_segments = tok.build_inputs(ids_a, tok.text_ids(b), 2 * self.maxlen)
            ids.append(row_ids)
            segments.append(row_segments)
        return {k: torch.from_numpy(v) for k, v in tok.pad(ids, segments).items()}


class PairStream(IterableDataset):
    """Batches of ``batch_size`` rows (a→b, b→a per pair) from pair shards; see module doc.

    Iterated directly (or through ``PairLoader`` for DataLoader workers) it yields the output of
    ``collate(rows, rng)`` (the rows themselves when ``collate`` is None) together with the
    reader position: each item is ``(batch, state)``. ``state_dict()`` / ``load_state_dict()``
    save and restore the position of a stream iterated in this process.
    """

    def __init__(
        self,
        data: str | Path | Sequence[str | Path],
        batch_size: int = 96,
        collate: Callable[[list[Pair], np.random.Generator], Any] | None = None,
        *,
        shuffle_buffer: int = 8192,
        seed: int = 0,
        epochs: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size must be even and ≥ 2 (a→b, b→a rows), got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be ≥ 1 or None, got {epochs}")
        self.paths = resolve_shards(data)
        self.batch_size = batch_size
        self.collate = collate
        self.shuffle_buffer = max(1, shuffle_buffer)
        self.seed = seed
        self.epochs = epochs
        self.rank = rank
        self.world_size = world_size
        self._pieces: dict[int, list[Piece]] = {}
        self.pieces(1)
        self._resume: dict[str, Any] | None = None
        self._position: dict[str, Any] | None = None

    def pieces(self, readers_per_rank: int) -> list[Piece]:
        """All pieces for ``world_size × readers_per_rank`` readers (checks every shard once)."""
        if readers_per_rank not in self._pieces:
            self._pieces[readers_per_rank] = list_pieces(
                self.paths, self.world_size * readers_per_rank)
        return self._pieces[readers_per_rank]

    @property
    def num_rows(self) -> int:
        """Pairs in one epoch (all ranks together)."""
        return sum(p.stop - p.start for p in self.pieces(1))

    def state_dict(self) -> dict[str, Any]:
        """Position after the last batch iterated in this process (the start if none)."""
        if self._position is not None:
            return copy.deepcopy(self._position)
        return self.initial_state(1) if self._resume is None else copy.deepcopy(self._resume)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state`` at the next ``iter()``; the layout (seed, batch size, shuffle
        buffer, rank, world size, workers) must be the one that produced it."""
        expected = self.initial_state(state.get("num_workers", 1))
        for key in ("seed", "batch_size", "shuffle_buffer", "rank", "world_size", "num_workers",
                    "pieces", "pairs"):
            if state.get(key) != expected[key]:
                raise ValueError(f"stream state has {key}={state.get(key)!r}, this stream "
                                 f"{expected[key]!r}: resume needs the same data and layout")
        self._resume = copy.deepcopy(state)
        self._position = None

    def initial_state(self, num_workers: int) -> dict[str, Any]:
        """Position at the start; ``pieces`` and ``pairs`` fingerprint the data it applies to."""
        return {
            "seed": self.seed, "batch_size": self.batch_size, "shuffle_buffer": self.shuffle_buffer,
            "rank": self.rank, "world_size": self.world_size, "num_workers": num_workers,
            "pieces": len(self.pieces(num_workers)), "pairs": self.num_rows,
            "next_worker": 0, "readers": {},
        }

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        info = get_worker_info()
        num_workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        state = self._resume or self.initial_state(num_workers)
        if state["num_workers"] != num_workers:
            raise ValueError(f"stream state is for {state['num_workers']} workers, "
                             f"iterated with {num_workers}")
        local = (worker + state["next_worker"]) % num_workers
        reader = self.rank * num_workers + local
        start = ReaderState(**state["readers"].get(str(local), {}))
        position = copy.deepcopy(state)
        for batch, reader_state in self._read(reader, num_workers, start):
            position["readers"][str(local)] = asdict(reader_state)
            position["next_worker"] = (local + 1) % num_workers
            if info is None:
                self._position = position
            yield batch, {"worker": local, "reader": asdict(reader_state)}

    def _read(self, reader: int, num_workers: int, state: ReaderState
              ) -> Iterator[tuple[Any, ReaderState]]:
        """Batches of reader ``reader`` from ``state`` on, each with the position after it."""
        pairs_per_batch = self.batch_size // 2
        pending: list[Pair] = []
        for pair, position in self._pairs(reader, num_workers, state):
            pending.append(pair)
            if len(pending) == pairs_per_batch:
                yield self._batch(pending, reader, position), position
                pending = []
        if pending:
            yield self._batch(pending, reader, state), state

    def _batch(self, pairs: list[Pair], reader: int, position: ReaderState) -> Any:
        rows = [row for a, b in pairs for row in ((a, b), (b, a))]
        batch_index = position.batches
        position.batches += 1
        if self.collate is None:
            return rows
        return self.collate(rows, _rng(self.seed, 1, reader, batch_index))

    def _pairs(self, reader: int, num_workers: int, state: ReaderState
               ) -> Iterator[tuple[Pair, ReaderState]]:
        """Pairs of ``reader`` in shuffled order from ``state`` on; ``state`` is advanced in
        place and yielded with each pair as the position after it."""
        all_pieces = self.pieces(num_workers)
        readers = self.world_size * num_workers
        while self.epochs is None or state.epoch < self.epochs:
            order = _rng(self.seed, 0, state.epoch).permutation(len(all_pieces))
            mine = [all_pieces[i] for i in order[reader::readers]]
            rows = self._rows_from(mine, state.piece, state.row)
            while True:
                start_piece, start_row = state.piece, state.row
                window = []
                for pair, piece, row in rows:
                    window.append(pair)
                    state.piece, state.row = piece, row
                    if len(window) == self.shuffle_buffer:
                        break
                if not window:
                    break
                perm = _rng(self.seed, 2, state.epoch, reader, state.window)
                perm = perm.permutation(len(window))
                end_piece, end_row = state.piece, state.row
                skip = state.emitted
                for k, i in enumerate(perm[skip:], start=skip + 1):
                    state.piece, state.row, state.emitted = start_piece, start_row, k
                    if k == len(window):
                        state.piece, state.row, state.emitted = end_piece, end_row, 0
                        state.window += 1
                    state.shard = mine[min(state.piece, len(mine) - 1)].path
                    yield window[i], state
            state.epoch, state.window, state.piece, state.row, state.emitted = (
                state.epoch + 1, 0, 0, 0, 0)

    @staticmethod
    def _rows_from(pieces: list[Piece], piece: int, row: int) -> Iterator[tuple[Pair, int, int]]:
        """Pairs of ``pieces`` from (piece, row) on, each with the (piece, row) after it."""
        for index in range(piece, len(pieces)):
            p = pieces[index]
            first = p.start + (row if index == piece else 0)
            for offset, pair in enumerate(iter_shard_pairs(Path(p.path), p.row_group, first,
                                                           p.stop), start=first - p.start + 1):
                if offset == p.stop - p.start:
                    yield pair, index + 1, 0
                else:
                    yield pair, index, offset


class PairLoader:
    """``DataLoader`` over a ``PairStream`` with workers, tracking every worker's position.

    Iterating yields the batches only; ``state_dict()`` gives the position after the last batch
    yielded (all workers, and which worker comes next) and ``load_state_dict()`` restores it
    before the next ``iter()``, so the resumed loader yields exactly the remaining batches.
    Extra keyword arguments go to ``DataLoader`` (e.g. ``pin_memory``, ``prefetch_factor``).
    """

    def __init__(self, stream: PairStream, num_workers: int = 0, **loader_kwargs: Any) -> None:
        self.stream = stream
        self.num_workers = num_workers
        self.loader_kwargs = loader_kwargs
        self._state = stream.initial_state(max(1, num_workers))

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)
        self._state = copy.deepcopy(state)

    def __iter__(self) -> Iterator[Any]:
        self.stream.load_state_dict(self._state)
        self.stream.pieces(max(1, self.num_workers))
        loader = DataLoader(self.stream, batch_size=None, num_workers=self.num_workers,
                            persistent_workers=False, **self.loader_kwargs)
        workers = max(1, self.num_workers)
        for batch, position in loader:
            self._state["readers"][str(position["worker"])] = position["reader"]
            self._state["next_worker"] = (position["worker"] + 1) % workers
            yield batch
