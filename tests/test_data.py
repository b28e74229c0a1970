"""Pair stream on small Parquet shards of real LCQMC pairs: every pair once per epoch across
workers and ranks, a→b / b→a adjacency, determinism, exact resume, collate, bad shards."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from model.data import PairCollator, PairLoader, PairStream, resolve_shards
from model.noise import BartNoise
from model.tokenizer import Tokenizer

SCHEMA = pa.schema([("text_a", pa.string()), ("text_b", pa.string()), ("score", pa.float32()),
                    ("scheme", pa.string()), ("group_id", pa.string())])


def write_pairs(path, pairs, row_group_size=64):
    table = pa.table({
        "text_a": [a for a, _ in pairs], "text_b": [b for _, b in pairs],
        "score": [0.5] * len(pairs), "scheme": ["question"] * len(pairs),
        "group_id": [f"g{i}" for i in range(len(pairs))],
    }, schema=SCHEMA)
    pq.write_table(table, path, row_group_size=row_group_size)


@pytest.fixture(scope="module")
def lcqmc(shared_data):
    lines = (shared_data / "sts" / "LCQMC.valid.data").read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(tuple(line.split("\t")[:2]) for line in lines))


@pytest.fixture
def shards(tmp_path, lcqmc):
    """1000 pairs in 5 shards (one empty) of 64-row row groups."""
    pairs, start = lcqmc[:1000], 0
    for k, size in enumerate((0, 130, 300, 70, 500)):
        write_pairs(tmp_path / f"train-{k:05d}.parquet", pairs[start: start + size])
        start += size
    return str(tmp_path / "train-*.parquet"), pairs


@pytest.fixture(scope="module")
def tok(shared_data):
    return Tokenizer(shared_data / "vocab" / "roformer-sim-char" / "vocab.txt")


def stream_rows(stream_or_loader):
    items = list(stream_or_loader)
    batches = [b for b, _ in items] if isinstance(stream_or_loader, PairStream) else items
    return [tuple(row) for batch in batches for row in batch], batches


def assert_adjacent(rows):
    assert len(rows) % 2 == 0
    for k in range(0, len(rows), 2):
        assert rows[k + 1] == (rows[k][1], rows[k][0])


def test_one_epoch_yields_every_pair_once_in_both_directions(shards):
    data, pairs = shards
    stream = PairStream(data, batch_size=8, shuffle_buffer=50, seed=3, epochs=1)
    rows, batches = stream_rows(stream)
    assert stream.num_rows == 1000
    assert_adjacent(rows)
    assert sorted(rows[::2]) == sorted(pairs)
    assert all(len(b) == 8 for b in batches)
    assert rows[::2][:20] != pairs[:20], "shuffled"


@pytest.mark.parametrize("world_size,num_workers", [(1, 2), (2, 2), (3, 0)])
def test_workers_and_ranks_split_without_loss_or_duplication(shards, world_size, num_workers):
    data, pairs = shards
    seen = []
    for rank in range(world_size):
        stream = PairStream(data, batch_size=6, shuffle_buffer=40, seed=1, epochs=2,
                            rank=rank, world_size=world_size)
        rows, batches = stream_rows(PairLoader(stream, num_workers=num_workers))
        assert all(len(b) % 2 == 0 for b in batches)
        assert_adjacent(rows)
        seen += rows[::2]
    assert sorted(seen) == sorted(pairs * 2)


def test_fewer_row_groups_than_readers_are_split(tmp_path, lcqmc):
    write_pairs(tmp_path / "one.parquet", lcqmc[:9], row_group_size=100)
    seen = []
    for rank in range(4):
        stream = PairStream(tmp_path / "one.parquet", batch_size=2, epochs=1, rank=rank,
                            world_size=4)
        seen += stream_rows(stream)[0][::2]
    assert sorted(seen) == sorted(lcqmc[:9])
    with pytest.raises(ValueError, match="cannot feed 16 readers"):
        list(PairLoader(PairStream(tmp_path / "one.parquet", batch_size=2, world_size=8),
                        num_workers=2))


def test_same_seed_same_stream(shards):
    data, _ = shards

    def first_rows(seed):
        stream = PairStream(data, batch_size=10, shuffle_buffer=64, seed=seed, epochs=2)
        return stream_rows(stream)[0]

    assert first_rows(4) == first_rows(4)
    assert first_rows(4) != first_rows(5)
    rows = first_rows(4)
    assert rows[:2000] != rows[2000:], "each epoch has its own order"


def collated(tok, **noise_kwargs):
    noise = BartNoise(tok, **noise_kwargs) if noise_kwargs else BartNoise(tok)
    return PairCollator(tok, maxlen=32, noise=noise)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_yields_exactly_the_remaining_batches(tmp_path, lcqmc, tok, num_workers):
    for k in range(3):
        write_pairs(tmp_path / f"s{k}.parquet", lcqmc[80 * k: 80 * k + 80], row_group_size=20)

    def loader():
        stream = PairStream(str(tmp_path / "s*.parquet"), batch_size=16, collate=collated(tok),
                            shuffle_buffer=24, seed=9)
        return PairLoader(stream, num_workers=num_workers)

    def take(it, n):
        return [next(it)["input_ids"].tolist() for _ in range(n)]

    # 240 pairs = 30 batches of 8 pairs per epoch: interruptions in epochs 0 and 1.
    uninterrupted = take(iter(loader()), 70)
    first = loader()
    head = take(iter(first), 23)
    state = json.loads(json.dumps(first.state_dict()))
    readers = state["readers"].values()
    assert all({"epoch", "shard", "row", "window", "emitted"} <= set(r) for r in readers)
    second = loader()
    second.load_state_dict(state)
    middle = take(iter(second), 29)
    assert min(r["epoch"] for r in second.state_dict()["readers"].values()) == 1
    third = loader()
    third.load_state_dict(second.state_dict())
    tail = take(iter(third), 18)
    assert uninterrupted == head + middle + tail


def test_stream_state_dict_in_process(shards):
    data, _ = shards
    stream = PairStream(data, batch_size=4, shuffle_buffer=30, seed=2, epochs=1)
    it = iter(stream)
    for _ in range(100):
        next(it)
    state = stream.state_dict()
    rest = [b for b, _ in it]
    resumed = PairStream(data, batch_size=4, shuffle_buffer=30, seed=2, epochs=1)
    resumed.load_state_dict(state)
    assert [b for b, _ in resumed] == rest
    other = PairStream(data, batch_size=4, shuffle_buffer=31, seed=2, epochs=1)
    with pytest.raises(ValueError, match="shuffle_buffer"):
        other.load_state_dict(state)


def test_collate_pads_and_keeps_segment_b_clean(shards, tok):
    data, _ = shards
    everything = collated(tok, row_prob=1.0, word_prob=1.0, mask_prob=1.0, keep_prob=0.0)
    stream = PairStream(data, batch_size=8, collate=everything, seed=0, epochs=1)
    (batch, _), (raw, _) = next(iter(stream)), next(iter(PairStream(data, batch_size=8, seed=0,
                                                                      epochs=1)))
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    assert all(v.dtype == torch.int64 and v.shape[0] == 8 for v in batch.values())
    for i, (a, b) in enumerate(raw):
        ids = batch["input_ids"][i][batch["attention_mask"][i] == 1].tolist()
        seg = batch["token_type_ids"][i][batch["attention_mask"][i] == 1].tolist()
        clean_ids, clean_seg = tok.encode(a, b, maxlen=64)
        assert seg == clean_seg
        n_a = seg.count(0)
        assert ids[0] == tok.cls_id and ids[n_a - 1] == tok.sep_id
        assert set(ids[1: n_a - 1]) <= {tok.mask_id}
        assert ids[n_a:] == clean_ids[n_a:]
    with pytest.raises(ValueError, match="rng"):
        everything([("好", "坏")])


def test_collate_truncates_rows_to_twice_maxlen(tok, lcqmc):
    collate = PairCollator(tok, maxlen=8)
    batch = collate([(a * 3, b) for a, b in lcqmc[:6]], np.random.default_rng(0))
    assert batch["input_ids"].shape[1] <= 16
    assert collate([("好", "坏")])["input_ids"].tolist() == [tok.encode("好", "坏")[0]]


def test_manifest_and_folder_list_shards(shards, tmp_path):
    data, pairs = shards
    names = [p.name for p in resolve_shards(data)]
    assert resolve_shards(tmp_path) == resolve_shards(data)
    # the layout pipelines.build_corpus writes: train and valid shards in one list
    valid = tmp_path / "valid-00000.parquet"
    write_pairs(valid, pairs[:3])
    (tmp_path / "_manifest.json").write_text(json.dumps({"total_rows": 1003, "shards": [
        {"file": n, "split": "train", "rows": 0} for n in names] + [
        {"file": valid.name, "split": "valid", "rows": 3}]}), encoding="utf-8")
    stream = PairStream(tmp_path / "_manifest.json", batch_size=8, epochs=1)
    assert sorted(stream_rows(stream)[0][::2]) == sorted(pairs)
    assert resolve_shards(tmp_path, split="valid") == [valid]
    assert len(resolve_shards(tmp_path / "_manifest.json", split=None)) == 6
    with pytest.raises(ValueError, match="no shards of split 'test'"):
        resolve_shards(tmp_path, split="test")
    (tmp_path / "bad.json").write_text(json.dumps({"shards": ["missing.parquet"]}))
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        resolve_shards(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text(json.dumps({"files": names}))
    with pytest.raises(ValueError, match="odd.json"):
        resolve_shards(str(tmp_path / "odd.json"))


def test_bad_data_is_named(tmp_path, lcqmc):
    with pytest.raises(FileNotFoundError, match="matches no files"):
        PairStream(str(tmp_path / "*.parquet"))
    write_pairs(tmp_path / "good.parquet", lcqmc[:10])
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match="corrupt.parquet: not a readable Parquet file"):
        PairStream(str(tmp_path / "*.parquet"))
    (tmp_path / "corrupt.parquet").unlink()
    pq.write_table(pa.table({"text_a": ["好"], "answer": ["坏"]}), tmp_path / "schema.parquet")
    with pytest.raises(ValueError, match="schema.parquet: column 'text_b' missing"):
        PairStream(str(tmp_path / "*.parquet"))
    pq.write_table(pa.table({"text_a": [1], "text_b": ["坏"]}), tmp_path / "schema.parquet")
    with pytest.raises(ValueError, match="schema.parquet: column 'text_a' is int64"):
        PairStream(str(tmp_path / "*.parquet"))
    pq.write_table(pa.table({"text_a": ["好", None], "text_b": ["坏", "坏"]}),
                   tmp_path / "schema.parquet")
    with pytest.raises(ValueError, match="schema.parquet: null text in row 1"):
        list(PairStream(tmp_path / "schema.parquet", batch_size=2, epochs=1))
    write_pairs(tmp_path / "empty.parquet", [])
    pq.write_table(pa.table({"text_a": [], "text_b": []}), tmp_path / "untyped.parquet")
    with pytest.raises(ValueError, match="no rows"):
        PairStream([tmp_path / "empty.parquet", tmp_path / "untyped.parquet"])
    with pytest.raises(ValueError, match="batch_size"):
        PairStream(tmp_path / "good.parquet", batch_size=7)
