import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from similarity import DEFAULT_VARIANT, VARIANTS, length_bound, normalise, profile, score
from similarity.jaccard import content, jaccard

ALL = [*VARIANTS, "default"]
# A small alphabet so random texts overlap; includes punctuation, spaces, case and full width.
texts = st.text(alphabet="今天天气好不错的了ab AB1,。!ａ\u3000", max_size=30)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("set", 3 / 6),  # {今天气好} vs {今天气不错}: 3 shared of 6
        ("multiset", 4 / 7),  # Σmin = 今1 天2 气1 = 4; Σmax = 4 + 好 + 不 + 错 = 7
        ("bigram", 3 / 6),  # {今天 天天 天气 气好} vs {今天 天天 天气 气不 不错}
        ("uni_bigram", 7 / 13),  # (4 + 3) shared of 9 + 11 - 7
    ],
)
def test_hand_computed_values(variant, expected):
    assert score("今天天气好", "今天天气不错", variant) == pytest.approx(expected, abs=0)


def test_default_is_the_chosen_variant():
    assert DEFAULT_VARIANT in VARIANTS
    assert score("今天天气好", "今天天气不错") == score(
        "今天天气好", "今天天气不错", DEFAULT_VARIANT
    )


@pytest.mark.parametrize("variant", ALL)
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hello, World!", "hello world"),
        ("ＡＢＣ１２３", "abc 123"),
        ("你好。", "你好!!"),
        ("", "。"),
    ],
)
def test_punctuation_whitespace_case_and_width_are_ignored(variant, a, b):
    assert score(a, b, variant) == 1.0


@pytest.mark.parametrize("variant", ALL)
def test_disjoint_and_empty(variant):
    assert score("今天", "明年", variant) == 0.0
    assert score("今天", "", variant) == 0.0


def test_bad_input():
    with pytest.raises(TypeError, match="a must be str"):
        score(None, "x")
    with pytest.raises(TypeError, match="b must be str"):
        score("x", 1)
    with pytest.raises(ValueError, match="variant"):
        score("x", "y", "cosine")


@settings(max_examples=300, deadline=None)
@given(a=texts, b=texts, variant=st.sampled_from(ALL))
def test_symmetric_bounded_reflexive(a, b, variant):
    value = score(a, b, variant)
    assert 0.0 <= value <= 1.0
    assert value == score(b, a, variant)
    assert score(a, a, variant) == 1.0


@settings(max_examples=300, deadline=None)
@given(a=texts, b=texts)
def test_multiset_equals_sum_min_over_sum_max(a, b):
    ca, cb = Counter(content(a)), Counter(content(b))
    top = sum((ca & cb).values())
    bottom = sum((ca | cb).values())
    assert score(a, b, "multiset") == (top / bottom if bottom else 1.0)


@settings(max_examples=300, deadline=None)
@given(a=texts, b=texts, variant=st.sampled_from(ALL))
def test_length_bound_is_sound(a, b, variant):
    pa, pb = profile(a, variant), profile(b, variant)
    assert jaccard(pa, pb) <= length_bound(len(pa), len(pb))


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_profile_sizes_used_by_the_length_bound(text):
    chars = content(text)
    n = len(chars)
    assert len(profile(text, "set")) == len(set(chars))
    assert len(profile(text, "multiset")) == n
    bigrams = {chars[k : k + 2] for k in range(max(n - 1, 1))} - {""}
    assert len(profile(text, "bigram")) == len(bigrams)
    assert len(profile(text, "uni_bigram")) == max(2 * n - 1, 0)


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_length_bound_holds_in_floating_point(data):
    big = data.draw(st.integers(1, 10**6))
    small = data.draw(st.integers(0, big))
    inter = data.draw(st.integers(0, small))
    assert inter / (small + big - inter) <= length_bound(small, big) == length_bound(big, small)


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(max_codepoint=sys.maxunicode, exclude_categories=["Cs"])))
def test_content_keeps_exactly_the_alnum_characters(text):
    folded = normalise(text).casefold()
    assert content(text) == "".join(ch for ch in folded if ch.isalnum())
