import json
from itertools import islice

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from similarity import SCHEMES, VARIANTS, LSHConfig, admitted_pairs, profile, score, split_sentences
from similarity.candidates import _relabel, minhash_signatures


@pytest.fixture(scope="module")
def doc_groups(shared_data):
    with (shared_data / "docs" / "docs_sample.jsonl").open(encoding="utf-8") as handle:
        return [split_sentences(json.loads(line)["text"]) for line in handle]


@pytest.fixture(scope="module")
def qa_groups(shared_data):
    with (shared_data / "qa" / "qa_sample.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in islice(handle, 300)]
    return [[s for answer in r["answers"] for s in split_sentences(answer)] for r in records]


@pytest.fixture(scope="module")
def big_group(doc_groups):
    """One synthetic big group: the first 3,000 real sentences of the docs sample."""
    return [s for group in doc_groups for s in group][:3000]


def test_brute_force_equals_score_on_a_real_group(doc_groups):
    group = doc_groups[0]
    expected = [
        (i, j, score(group[i], group[j]))
        for i in range(len(group))
        for j in range(i + 1, len(group))
        if 0.2 <= score(group[i], group[j]) < 0.9
    ]
    assert expected and admitted_pairs(group, 0.2, 0.9, method="brute") == expected


@pytest.mark.parametrize("scheme", ["qa", "doc"])
def test_exact_equals_brute_force_on_real_groups(doc_groups, qa_groups, scheme):
    low, high = SCHEMES[scheme].low, SCHEMES[scheme].high
    found = 0
    for group in doc_groups[:300] + qa_groups:
        exact = admitted_pairs(group, low, high, method="exact")
        assert exact == admitted_pairs(group, low, high, method="brute")
        found += len(exact)
    assert found > 50


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("low", "high"), [(0.3, 1.01), (0.55, 0.9), (0.9, 1.01)])
def test_exact_equals_brute_force_on_a_big_real_group(big_group, variant, low, high):
    group = big_group[:400]
    exact = admitted_pairs(group, low, high, variant, method="exact")
    assert exact == admitted_pairs(group, low, high, variant, method="brute")


@settings(max_examples=200, deadline=None)
@given(
    group=st.lists(st.text(alphabet="今天气好不错的a1 ,", max_size=12), max_size=25),
    low=st.sampled_from([0.0, 1e-9, 0.1, 0.25, 1 / 3, 0.5, 2 / 3, 0.8, 1.0]),
    width=st.sampled_from([0.05, 0.3, 1.0, 2.0]),
    variant=st.sampled_from(list(VARIANTS)),
)
def test_exact_and_lsh_agree_with_brute_force_on_random_groups(group, low, width, variant):
    brute = admitted_pairs(group, low, low + width, variant, method="brute")
    assert admitted_pairs(group, low, low + width, variant, method="exact") == brute
    assert set(admitted_pairs(group, low, low + width, variant, method="lsh")) <= set(brute)


def test_lsh_recall_on_real_docs_at_the_doc_threshold(big_group):
    low, high = SCHEMES["doc"].low, SCHEMES["doc"].high
    exact = admitted_pairs(big_group, low, high, method="exact")
    lsh = admitted_pairs(big_group, low, high, method="lsh")
    assert set(lsh) <= set(exact), "LSH candidates are verified: no false positives"
    assert len(exact) > 100
    assert len(set(lsh) & set(exact)) / len(exact) >= 0.95
    assert admitted_pairs(big_group, low, high, method="lsh") == lsh, "deterministic"


def test_minhash_signatures_equal_datasketch(big_group):
    from datasketch import MinHash

    config = LSHConfig(num_perm=64, seed=7)
    profiles = _relabel([profile(s) for s in big_group[:1000]] + [frozenset()])  # > 1 chunk
    reference = MinHash.bulk(
        [sorted(p) for p in profiles], num_perm=64, seed=7, hashfunc=int, scheme="affine32"
    )
    expected = np.stack([m.hashvalues for m in reference])
    assert np.array_equal(minhash_signatures(profiles, config), expected)


def test_auto_switches_to_lsh_above_the_cutoff(big_group):
    group = big_group[:400]
    low, high = SCHEMES["doc"].low, SCHEMES["doc"].high
    assert admitted_pairs(group, low, high) == admitted_pairs(group, low, high, method="exact")
    assert admitted_pairs(group, low, high, lsh_cutoff=100) == admitted_pairs(
        group, low, high, method="lsh"
    )


def test_stats_count_scored_and_admitted_pairs_and_accumulate():
    group = ["今天天气很好", "今天天气不错", "明天会下雨吗", "今天天气很好啊"]
    stats = {}
    pairs = admitted_pairs(group, 0.3, 0.99, method="brute", stats=stats)
    assert stats == {"pairs_scored": 6, "pairs_admitted": len(pairs)}
    admitted_pairs(group, 0.3, 0.99, method="exact", stats=stats)
    assert 6 < stats["pairs_scored"] < 12 and stats["pairs_admitted"] == 2 * len(pairs)


def test_pairs_are_ordered_and_inside_the_interval(doc_groups):
    for group in doc_groups[:50]:
        pairs = admitted_pairs(group, 0.3, 0.8)
        assert pairs == sorted(pairs)
        assert all(i < j and 0.3 <= value < 0.8 for i, j, value in pairs)


def test_low_zero_admits_every_pair_below_high():
    group = ["今天", "明年", "今天!", ""]
    assert admitted_pairs(group, 0.0, 0.5) == [
        (0, 1, 0.0),
        (0, 3, 0.0),
        (1, 2, 0.0),
        (1, 3, 0.0),
        (2, 3, 0.0),
    ]
    assert admitted_pairs(group, 0.0, 1.01, method="exact")[1] == (0, 2, 1.0)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((None, 0.5, 0.9), TypeError, "sentences must be a list of str"),
        (("一句话", 0.5, 0.9), TypeError, "sentences must be a list of str"),
        ((["ok", None], 0.5, 0.9), TypeError, r"sentences\[1\]"),
        ((["a", "b"], 0.9, 0.5), ValueError, "low < high"),
        ((["a", "b"], -0.1, 0.5), ValueError, "low < high"),
    ],
)
def test_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        admitted_pairs(*args)


def test_bad_method_and_variant():
    with pytest.raises(ValueError, match="method"):
        admitted_pairs(["a", "b"], 0.5, 0.9, method="fast")
    with pytest.raises(ValueError, match="variant"):
        admitted_pairs(["a", "b"], 0.5, 0.9, variant="cosine")


def test_exact_overlaps_agree_across_table_blocks(big_group, monkeypatch):
    group = big_group[:400]
    low, high = SCHEMES["doc"].low, SCHEMES["doc"].high
    whole = admitted_pairs(group, low, high, method="exact")
    monkeypatch.setattr("similarity.candidates._TABLE_CELLS", 1)  # one sentence per block
    assert admitted_pairs(group, low, high, method="exact") == whole
    assert whole == admitted_pairs(group, low, high, method="brute")


@pytest.mark.parametrize("method", ["exact", "lsh"])
def test_empty_and_equal_profiles_pair_up(method):
    group = ["", "!", "今天", "今天。", "x", "?"]
    expected = [(0, 1, 1.0), (0, 5, 1.0), (1, 5, 1.0), (2, 3, 1.0)]
    assert admitted_pairs(group, 0.5, 1.01, method="brute") == expected
    assert admitted_pairs(group, 0.5, 1.01, method=method) == expected


def _restricted_reference(left, right, parts, low, high, variant):
    """All pairs allowed by ``right``/``parts``, scored one by one with ``score()``."""
    texts = left + (right or [])
    labels = parts if parts is not None else list(range(len(texts)))
    split = len(left) if right is not None else len(texts)
    expected = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if labels[i] == labels[j] or (right is not None and not i < split <= j):
                continue
            value = score(texts[i], texts[j], variant)
            if low <= value < high:
                expected.append((i, j - (split if right is not None else 0), value))
    return sorted(expected)


@settings(max_examples=200, deadline=None)
@given(
    group=st.lists(
        st.tuples(st.text(alphabet="今天气好不错的a1 ,", max_size=12), st.integers(0, 3)),
        max_size=25,
    ),
    cut=st.integers(0, 25),
    bipartite=st.booleans(),
    use_parts=st.booleans(),
    low=st.sampled_from([0.0, 0.1, 1 / 3, 0.5, 0.8]),
    variant=st.sampled_from(list(VARIANTS)),
)
def test_right_and_parts_restrict_pairs_on_random_groups(
    group, cut, bipartite, use_parts, low, variant
):
    texts, parts = [t for t, _ in group], [p for _, p in group]
    left, right = (texts[:cut], texts[cut:]) if bipartite else (texts, None)
    parts = parts if use_parts else None
    expected = _restricted_reference(left, right, parts, low, low + 0.5, variant)
    for method in ("brute", "exact"):
        found = admitted_pairs(left, low, low + 0.5, variant, method, right=right, parts=parts)
        assert found == expected
    lsh = admitted_pairs(left, low, low + 0.5, variant, "lsh", right=right, parts=parts)
    assert set(lsh) <= set(expected)


@pytest.mark.parametrize("method", ["exact", "lsh"])
def test_block_pairs_of_a_real_group_cover_the_whole_group(big_group, method):
    """Two blocks scored apart (each alone, then across) give the pairs of the whole group."""
    group = big_group[:1200]
    low, high = SCHEMES["doc"].low, SCHEMES["doc"].high
    whole = set(admitted_pairs(group, low, high, method="exact"))
    a, b = group[:500], group[500:]
    stats: dict[str, int] = {}
    pieces = {*admitted_pairs(a, low, high, method=method, stats=stats),
              *((i + 500, j + 500, v) for i, j, v in admitted_pairs(b, low, high, method=method)),
              *((i, j + 500, v)
                for i, j, v in admitted_pairs(a, low, high, method=method, right=b))}
    if method == "exact":
        assert pieces == whole
    else:
        assert len(pieces & whole) >= 0.95 * len(whole) and pieces <= whole
    assert whole


def test_parts_skip_pairs_of_one_answer_on_real_qa(shared_data):
    low, high = SCHEMES["qa"].low, SCHEMES["qa"].high
    with (shared_data / "qa" / "qa_sample.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in islice(handle, 300)]
    kept = 0
    for record in records:
        sentences, parts = [], []
        for k, answer in enumerate(record["answers"]):
            split = split_sentences(answer)
            sentences += split
            parts += [k] * len(split)
        stats: dict[str, int] = {}
        found = admitted_pairs(sentences, low, high, method="exact", parts=parts, stats=stats)
        assert found == _restricted_reference(sentences, None, parts, low, high, "default")
        assert all(parts[i] != parts[j] for i, j, _ in found)
        kept += len(found)
    assert kept > 10


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"right": "一句话"}, TypeError, "right must be a list of str"),
        ({"right": ["ok", 3]}, TypeError, r"right\[1\]"),
        ({"parts": [0]}, ValueError, "one int per sentence"),
        ({"right": ["c"], "parts": [0, 1]}, ValueError, r"one int per sentence \(3\)"),
    ],
)
def test_bad_right_and_parts(kwargs, error, match):
    with pytest.raises(error, match=match):
        admitted_pairs(["a", "b"], 0.5, 0.9, **kwargs)
