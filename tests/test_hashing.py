"""``pipelines.hashing``: the row-by-row pair hashes are ``content_hash`` of each pair."""

import numpy as np

from pipelines.hashing import content_hash, pair_hash_rows


def test_pair_hash_rows_are_content_hashes():
    texts = ["b", "a", "长\udc80", "", "问题"]
    rows = list(pair_hash_rows(5, texts))
    assert [len(row) for row in rows] == [4, 3, 2, 1]
    assert all(row.dtype == np.uint64 for row in rows)
    assert [row.tolist() for row in rows] == [
        [content_hash(5, texts[i], texts[j]) for j in range(i + 1, len(texts))]
        for i in range(len(texts) - 1)]
    assert list(pair_hash_rows(5, ["a"])) == []
