import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from similarity import DEFAULT_FILTERS, FILTER_RULES, normalise, split_sentences, split_with_stats
from similarity.text import (
    BROKEN_BRACKET,
    BULLET_HEADING,
    BYLINE,
    DOCUMENT_FILTERS,
    HEADLINE_RUN_IN,
    LEAD_IN,
    LOW_CJK_RATIO,
    MARKUP,
    MASKED,
    MOSTLY_SYMBOLS,
    QUESTION_FILTERS,
    TOO_LONG,
    TOO_SHORT,
    URL_OR_EMAIL,
    broken_bracket,
    clean_markup,
    headline_run_in,
)


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
        ("请见系列1.由于某种原因", ["请见系列", "1.由于某种原因"]),
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
    assert split_sentences("一二、三四:五六", max_len=6, filters=None) == ["一二、三四:", "五六"]
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
        ("详见http://example.com/abcdefgh/ijklmn", URL_OR_EMAIL),
        ("请发邮件到service@example.com.cn咨询", URL_OR_EMAIL),
        ("请登录www.example.com查询保单", URL_OR_EMAIL),
        ("在中*人*共*国境内行驶的机动车", MASKED),
        ("*院病历和诊断证明", MASKED),
        ("系统中查询**者的缴费年限", MASKED),
        ("绝对免赔额为5##元的部分", MASKED),
        ("攻击使护甲降低等级*3.7点", None),
        ("被保险人必须具备下列条件:", LEAD_IN),
        ("他的名字是{{lang|en|Tom}}先生", MARKUP),
        ("参见[[北京市]]的条目内容", MARKUP),
        ("zh-hant:葛莱美奖得主名单", MARKUP),
        ("第一段文字<span>强调</span>结束", MARKUP),
        ("对于formula_2,实哈代空间等于formula_3空间", MARKUP),
        ("非石油及天然气生产:_____。", MARKUP),
        ("This is an English sentence.", LOW_CJK_RATIO),
        ("iPhone12怎么样啊", None),
        ("这是一个正常的中文句子。", None),
        ("the Seer》专辑代表他们在音乐上的突破,", BROKEN_BRACKET),
        ("BPM)、业务流程再造的方法", BROKEN_BRACKET),
        ("撑着所有院线的票房从《南京!", BROKEN_BRACKET),
        ("《保险法》第十条(投保人)的规定如此。", None),
        ("●专家观点房价将持续小幅下滑多位专家认为,", BULLET_HEADING),
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
        pieces = split_sentences(clean_markup(normalise(text)), 48, filters=None)
        assert len(kept) + sum(dropped.values()) == len(pieces)
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a break before an inline enumeration marker
        ("第三者责任保险2、车损险:保障车辆损失", ["第三者责任保险", "2、车损险:保障车辆损失"]),
        ("材料如下:(1)身份证原件(2)户口本", ["材料如下:", "(1)身份证原件", "(2)户口本"]),
        ("分为两类:(一)财产保险(二)人身保险", ["分为两类:", "(一)财产保险", "(二)人身保险"]),
        ("流程如下:一、报案,二、定损", ["流程如下:", "一、报案,", "二、定损"]),
        # no break: a list of numbers, a coordination, an ordinal, a decimal, a version
        ("缴费年限有10、15、20年可选", ["缴费年限有10、15、20年可选"]),
        ("实行统一、规范的管理办法", ["实行统一、规范的管理办法"]),
        ("大都会响尾蛇战第一、二场", ["大都会响尾蛇战第一、二场"]),
        ("利率约为2.5个百分点", ["利率约为2.5个百分点"]),
        ("在中国(含港澳)销售", ["在中国(含港澳)销售"]),
    ],
)
def test_inline_enumeration_markers_start_a_sentence(text, expected):
    assert split_sentences(text, filters=None) == expected


def test_no_recut_at_the_enumeration_comma():
    text = "法定代表人是主要负责人,如工厂的厂长、公司的董事长、学校的校长等"
    assert split_sentences(text, max_len=20, filters=None) == [
        "法定代表人是主要负责人,", "如工厂的厂长、公司的董事长、学校的校长等"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("最后入替-{zh-hans:卡尔顿·科尔;zh-hk:卡顿·高尔;zh-tw:卡尔顿}-出场",
         "最后入替卡尔顿·科尔出场"),
        ("养母徐夫人为-{后}-,但孙权不同意", "养母徐夫人为后,但孙权不同意"),
        ("玩法:<br>嘉宾需要回答题目", "玩法:\n嘉宾需要回答题目"),
        ("没有标记的句子", "没有标记的句子"),
    ],
)
def test_clean_markup(text, expected):
    assert clean_markup(text) == expected


def test_markup_is_cleaned_before_splitting_only_when_filtering():
    text = "他加盟了-{zh-hans:曼联;zh-hk:曼联队}-足球俱乐部。"
    assert split_sentences(text) == ["他加盟了曼联足球俱乐部。"]
    assert split_sentences(text, filters=None) == [
        "他加盟了-{zh-hans:曼联;", "zh-hk:曼联队}-足球俱乐部。"]


@pytest.mark.parametrize(("question", "kept"), [("能贷不能", True), ("能贷", False)])
def test_whole_questions_keep_three_letters(question, kept):
    assert (QUESTION_FILTERS.rejection(question) is None) is kept
    assert DEFAULT_FILTERS.rejection(question) == TOO_SHORT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("基金开户数首周增幅超四成本报讯 (记者 吴倩) 股市大热,赚钱效应再现。",
         ["基金开户数首周增幅超四成", "股市大热,赚钱效应再现。"]),
        ("费城没他难进季后赛新浪体育讯北京时间4月3日,虽然说今年夏天",
         ["费城没他难进季后赛", "北京时间4月3日,虽然说今年夏天"]),
        ("基金净值劲升⊙本报记者 徐婧婧 上周,基金表现好。", ["基金净值劲升", "上周,基金表现好。"]),
        ("校借考又违规 本报讯(见习记者廖筱婧)在大部分同学正在复习",
         ["校借考又违规", "在大部分同学正在复习"]),
        ("最高法院要求做好案件审判新华网北京7月12日电 最高人民法院日前发出通知",
         ["最高法院要求做好案件审判", "最高人民法院日前发出通知"]),
        # not bylines: 讯 inside ordinary words
        ("视讯委员会申请建立,资讯工程学系毕业,少年警讯。",
         ["视讯委员会申请建立,资讯工程学系毕业,少年警讯。"]),
    ],
)
def test_bylines_end_the_headline_and_are_dropped(text, expected):
    kept, dropped = split_with_stats(text)
    assert kept == expected
    assert dropped.get(BYLINE, 0) == (len(expected) == 2)
    assert "".join(split_sentences(text, filters=None)).replace(" ", "") == (
        normalise(text).replace(" ", ""))


@pytest.mark.parametrize(
    ("piece", "run_in"),
    [
        ("中国住宅寿命平均30多年 发达国家一般超过70年 近年来,我国住宅产业化水平有所上升,", True),
        ("安信地板总经理卢伟光卷入方宏进事件原央视名嘴方宏进因涉嫌合同诈骗被拘的消息被曝光", True),
        ("电影《星空》主题曲MV首发 五月天特别创作", False),
        ("颊鳞雀鲷,俗名为厚壳仔,为辐鳍鱼纲鲈形目隆头鱼亚目雀鲷科的其中一种。", False),
        ("凡氏下银汉鱼为辐鳍鱼纲银汉鱼目银汉鱼科的一种。", False),
    ],
)
def test_headline_run_in(piece, run_in):
    assert headline_run_in(piece) is run_in


def test_document_filters_drop_a_headline_run_in_only_as_the_first_piece():
    run_in = "中国住宅寿命平均30多年 发达国家一般超过70年 近年来,我国住宅产业化水平有所上升。"
    body = "但距发达国家还有巨大差距。"
    assert split_with_stats(run_in + body, filters=DOCUMENT_FILTERS) == (
        [body], {HEADLINE_RUN_IN: 1})
    assert split_sentences(body + run_in, filters=DOCUMENT_FILTERS) == [body, run_in]
    assert split_sentences(run_in + body) == [run_in, body]


def test_broken_bracket_and_whole_questions():
    assert broken_bracket("一览》的研究报告表明") and not broken_bracket("(1)《保险法》")
    assert QUESTION_FILTERS.rejection("BPM)是什么意思") is None
