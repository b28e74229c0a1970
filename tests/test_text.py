import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from similarity import DEFAULT_FILTERS, FILTER_RULES, normalise, split_sentences, split_with_stats
from similarity.text import LOW_CJK_RATIO, MOSTLY_SYMBOLS, TOO_LONG, TOO_SHORT


@pytest.fixture(scope="module")
def docs(shared_data):
    with (shared_data / "docs" / "docs_sample.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３，？！", "ABC123,?!"),
        ("a\x00b\u200bc\ufeffd\x7f", "abcd"),
        ("a \t\u3000 b", "a b"),
        ("a \r\n \n\u2028 b", "a\nb"),
        ("  前后空白\n ", "前后空白"),
        ("坏\ud800字符", "坏字符"),
        ("……", "......"),
    ],
)
def test_normalise(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["list"]])
def test_non_str_raises_type_error_naming_argument(bad):
    with pytest.raises(TypeError, match="text must be str"):
        split_sentences(bad)
    with pytest.raises(TypeError, match="text must be str"):
        split_with_stats(bad)


@pytest.mark.parametrize("blank", ["", " ", "\n\t\u3000 \r\n", "\u200b\ufeff"])
def test_empty_or_whitespace_gives_no_sentences(blank):
    assert split_sentences(blank) == []
    assert split_with_stats(blank) == ([], {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("他说:“你好。”然后走了。", ["他说:“你好。”", "然后走了。"]),
        ("「走吧!」她说。", ["「走吧!」", "她说。"]),
        ("(他走了。)然后呢", ["(他走了。)", "然后呢"]),
        ("然后……我走了", ["然后......", "我走了"]),
        ("等等...好吧", ["等等...", "好吧"]),
        ("真的吗?!是的。", ["真的吗?!", "是的。"]),
        ("先这样;再那样", ["先这样;", "再那样"]),
        ("第一行\n第二行", ["第一行", "第二行"]),
        ("圆周率约为3.14,很有名。", ["圆周率约为3.14,很有名。"]),
        ("请见系列1.由于某种原因", ["请见系列1.由于某种原因"]),
        (
            "详见https://www.example.com/a/index.html?id=3;谢谢。",
            ["详见https://www.example.com/a/index.html?id=3;", "谢谢。"],
        ),
        ("网址www.example.com.下一句", ["网址www.example.com.", "下一句"]),
        ("Mr. Smith went to Washington. He left.", ["Mr. Smith went to Washington.", "He left."]),
        ("See e.g. the U.S. rules. Done", ["See e.g. the U.S. rules.", "Done"]),
        ("iPhone 12很好用!价格是5999元。", ["iPhone 12很好用!", "价格是5999元。"]),
        ("今天天气很好", ["今天天气很好"]),
        ("天气很好.明天下雨", ["天气很好.", "明天下雨"]),
    ],
)
def test_splitter_edge_cases(text, expected):
    assert split_sentences(text, filters=None) == expected


def test_long_sentences_recut_at_secondary_separators_then_hard_cut():
    assert split_sentences("aaaa,bbbb,cccc", max_len=10, filters=None) == ["aaaa,bbbb,", "cccc"]
    assert split_sentences("一二、三四:五六", max_len=5, filters=None) == ["一二、", "三四:五六"]
    assert split_sentences("1,000,000元的东西", max_len=8, filters=None) == [
        "1,000,00",
        "0元的东西",
    ]
    assert split_sentences("abc defgh ijklmnopqrstu", max_len=10, filters=None) == [
        "abc defgh",
        "ijklmnopqr",
        "stu",
    ]
    pieces = split_sentences("的" * 25, max_len=10, filters=None)
    assert pieces == ["的" * 10, "的" * 10, "的" * 5]
    assert split_with_stats("的" * 25, max_len=10) == ([], {TOO_LONG: 3})


@pytest.mark.parametrize("max_len", [0, -1, 2.5])
def test_bad_max_len(max_len):
    with pytest.raises(ValueError, match="max_len"):
        split_sentences("你好。", max_len=max_len)


@pytest.mark.parametrize(
    ("sentence", "rule"),
    [
        ("好的。", TOO_SHORT),
        ("2019-2020-2021年。", MOSTLY_SYMBOLS),
        ("详见http://example.com/abcdefgh/ijklmn", MOSTLY_SYMBOLS),
        ("This is an English sentence.", LOW_CJK_RATIO),
        ("iPhone12怎么样啊", None),
        ("这是一个正常的中文句子。", None),
    ],
)
def test_each_filter_rule_is_named_and_counted(sentence, rule):
    sentences, dropped = split_with_stats(sentence)
    if rule is None:
        assert sentences == [sentence] and not dropped
    else:
        assert sentences == [] and dropped == {rule: 1}
        assert DEFAULT_FILTERS.rejection(sentence) == rule
    assert set(dropped) <= set(FILTER_RULES)


@pytest.mark.parametrize(
    "big",
    [
        "的" * 1_000_000,
        "a" * 1_000_000,
        " " * 1_000_000,
        "." * 1_000_000,
        "a." * 500_000,
        "1." * 500_000,
        "http://" + "a" * 1_000_000,
        ",的" * 500_000,
    ],
    ids=["cjk", "ascii", "spaces", "dots", "a-dot", "digit-dot", "url", "commas"],
)
def test_one_megabyte_without_sentence_punctuation_is_linear(big):
    start = time.perf_counter()
    with_filters, dropped = split_with_stats(big)
    without = split_sentences(big, filters=None)
    assert time.perf_counter() - start < 10
    assert all(len(s) <= 64 for s in without)
    assert len(with_filters) + sum(dropped.values()) == len(without)


def test_no_character_lost_with_filters_off_on_real_docs(docs):
    for text in docs:
        sentences = split_sentences(text, filters=None)
        assert "".join("".join(s.split()) for s in sentences) == "".join(normalise(text).split())
        assert all(0 < len(s) <= 64 and s == s.strip() for s in sentences)


def test_filter_counts_account_for_every_sentence_on_real_docs(docs):
    total = {}
    for text in docs[:400]:
        kept, dropped = split_with_stats(text, max_len=48)
        assert kept == split_sentences(text, max_len=48)
        assert len(kept) + sum(dropped.values()) == len(split_sentences(text, 48, filters=None))
        for rule, count in dropped.items():
            total[rule] = total.get(rule, 0) + count
    assert set(total) <= set(FILTER_RULES) and sum(total.values()) > 0


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="今天好a Z1.。!?;…,、:“”」)\n\t\u3000\u200b\ud800", max_size=120)
    | st.lists(
        st.sampled_from(["http://a.b/c?d=1", "3.14", "Mr.", "e.g.", "的的", "...", " "])
    ).map("".join),
    max_len=st.integers(1, 20),
)
def test_no_character_lost_and_no_piece_too_long_on_random_text(text, max_len):
    sentences = split_sentences(text, max_len=max_len, filters=None)
    assert "".join("".join(s.split()) for s in sentences) == "".join(normalise(text).split())
    assert all(0 < len(s) <= max_len and s == s.strip() for s in sentences)
    kept, dropped = split_with_stats(text, max_len=max_len)
    assert len(kept) + sum(dropped.values()) == len(sentences)
