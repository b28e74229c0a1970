"""The pair filter rules as pure functions on hand-written edge pairs (no Beam)."""

import pytest

from similarity.pair_filters import (
    RULES,
    SCHEME_RULES,
    GroupView,
    cjk_number,
    content_words,
    first_drop,
    group_view,
    leading_marker,
    numbers,
    resolve_rules,
    skeleton,
)

NO_GROUP = GroupView()


@pytest.mark.parametrize(
    ("text", "value"),
    [("三", 3), ("十", 10), ("十二", 12), ("二十", 20), ("二十三", 23), ("一百一十八", 118),
     ("两", 2), ("零", 0), ("甲", None)],
)
def test_cjk_number(text, value):
    assert cjk_number(text) == value


@pytest.mark.parametrize(
    ("sentence", "marker"),
    [
        ("(三)连续工作满1年不满10年的", ("paren_cjk", 3)),
        ("(4)价格要适合。", ("paren_arabic", 4)),
        ("2、车损险:保障车辆损失", ("arabic", 2)),
        ("3.投保人的身份证明;", ("arabic", 3)),
        ("二、认真阅读保险条款", ("cjk", 2)),
        ("第二名:航海主题T恤一件", ("ordinal", 2)),
        ("第一百一十八条保险经纪人是", ("ordinal", 118)),
        ("c、右:传送(后点)", ("letter", 3)),
        ("2008年入选百人榜", None),
        ("2.5万元以下的部分", None),
        ("第一回合第二回合决赛", None),
        ("保险人又称承保人", None),
    ],
)
def test_leading_marker(sentence, marker):
    assert leading_marker(sentence) == marker


def test_skeleton_masks_numbers_and_the_leading_marker():
    assert skeleton("2、2004年12月至2008年3月任副校长") == "0年0月至0年0月任副校长"
    assert skeleton("第三名:游戏币300万") == skeleton("第二名:游戏币400万")


@pytest.mark.parametrize(
    ("rule", "a", "b", "drops"),
    [
        # near_copy: containment after markers and punctuation go, or <= 2 edits
        ("near_copy", "3、由保险公司决定。", "第三,由保险公司决定。", True),
        ("near_copy", "3.投保人的身份证明;", "投保人的身份证明;", True),
        ("near_copy", "因此,在投保前先验明正身。", "因此,专业人士建议在投保前先验明正身。", True),
        ("near_copy", "手机老是自动发短信怎么回事?", "手机自动发短信是怎么回事?", False),
        ("near_copy", "因意外造成残废时给付残废保险金", "因意外造成残疾时给付残疾保险金", True),
        ("near_copy", "退保只能退现金价值", "过了犹豫期退保会有损失", False),
        ("near_copy", "您好,可以承保。", "这是可以承保的", True),
        ("near_copy", "是的,车祸属于意外", "你好,车祸也属于意外", True),
        ("near_copy", "你好,生效不退", "生效就不能退", False),
        ("near_copy", "可以分期吗", "可以分期还款吗", False),
        ("near_copy", "为什么我有端口,却没额度", "为什么没额度", True),
        ("near_copy", "右边空白位置有水印", "左边空白位置有水印", True),
        ("near_copy", "他的病好不了。", "他的病看不好。", False),
        # enumeration_sibling: one numbering family, different ranks
        ("enumeration_sibling", "(三)连续工作满1年不满10年的", "(四)连续工作满10年的", True),
        ("enumeration_sibling", "2、暂保单是临时合同", "3、保险单是正式凭证", True),
        ("enumeration_sibling", "第一名:T恤一件", "第二名:T恤一件和海报", True),
        ("enumeration_sibling", "(2)条款要细读。", "二、条款要细读。", False),
        ("enumeration_sibling", "3、价格要适合", "3、价格要合理", False),
        ("enumeration_sibling", "2、暂保单是临时合同", "保险单是正式凭证", False),
        # template_sibling: same skeleton up to numbers and one short slot
        ("template_sibling", "重复10次。", "重复50次。", True),
        ("template_sibling", "基金增仓了三个百分点", "基金减仓了三个百分点", True),
        ("template_sibling", "已满1年不满10年的,年休假5天", "已满10年不满20年的,年休假10天", True),
        ("template_sibling", "保险人又称承保人,是经办保险业务的主体",
         "被保险人又称受保人,是对标的具有保险利益的主体", False),
        ("template_sibling", "您好,车祸属于意外,可以申请理赔", "能,车祸属于意外", False),
        # number_mismatch: each side holds a number the other lacks
        ("number_mismatch", "华宝兴业上涨5.7%,收报0.714元;", "海富通上涨8.1%,收报0.937元;", True),
        ("number_mismatch", "每座炮塔备弹440发。", "基洛夫级每座炮塔备弹320发。", True),
        ("number_mismatch", "首场于2007年10月20日举行", "比赛于2007年10月20日开始", False),
        ("number_mismatch", "融资2亿美元,于10月16日上市", "于10月16日在纳斯达克上市", False),
        ("number_mismatch", "保险公司应在30日内赔付", "保险公司应当及时赔付", False),
        # few_shared_words: < 3 shared jieba words of >= 2 letters
        ("few_shared_words", "今日的北美洲西岸,当时朝北;", "北美洲北岸则朝东。", True),
        ("few_shared_words", "什么是文化?", "文化为什么重要?", True),
        ("few_shared_words", "投资范围是股票资产占基金资产比例为60%",
         "其投资范围为股票资产占基金资产的比例", False),
    ],
)
def test_rules_on_hand_written_pairs(rule, a, b, drops):
    assert RULES[rule].drops(a, b, NO_GROUP) is drops
    assert RULES[rule].drops(b, a, NO_GROUP) is drops  # symmetric


def test_numbers_and_content_words():
    assert numbers("上涨5.7%,收报0.714元,共3只") == {"5.7", "0.714", "3"}
    assert numbers("第三季度") == frozenset()
    assert content_words("保险公司应当在30日内赔付。") == {"保险公司", "应当", "日内", "赔付"}
    assert content_words("的了吗?") == frozenset()


def test_template_series_needs_three_sentences_of_one_frame_in_the_group():
    cv = ["2001年3月至2004年6月任华南理工大学副校长", "2004年6月至2008年1月任广州市副市长",
          "2008年1月至2012年5月任广东省委常委"]
    rule = RULES["template_sibling"]
    assert not rule.drops(cv[0], cv[1], group_view([cv[:2]]))
    assert rule.drops(cv[0], cv[1], group_view([cv[:2], cv[1:]]))
    assert group_view([cv[:2], cv[1:], cv[:2][::-1]]).frames == {"0年0月至0": 3}


def test_series_drops_a_pair_only_when_both_sentences_have_other_partners():
    a, b, c, d = "甲甲甲", "乙乙乙", "丙丙丙", "丁丁丁"
    # a–b, a–c, b–c: a triangle, every sentence has two partners; d only pairs with a
    view = group_view([(a, b), (a, c), (c, b), (b, a), (d, a)])
    assert view.partners == {a: 3, b: 2, c: 2, d: 1}
    rule = RULES["series"]
    assert rule.drops(a, b, view) and rule.drops(b, c, view)
    assert not rule.drops(a, d, view)
    assert not rule.drops(a, b, group_view([(a, b)])) and not rule.drops(a, b, GroupView())


def test_boilerplate_is_what_the_view_lists():
    common = "以上回答仅供参考,谢谢!"
    view = GroupView(boilerplate={common})
    assert RULES["boilerplate"].drops(common, "回答仅供参考", view)
    assert RULES["boilerplate"].drops("回答仅供参考", common, view)
    assert not RULES["boilerplate"].drops("回答仅供参考", "谢谢", view)


def test_first_drop_applies_rules_in_order_and_only_those_asked():
    a, b = "(1)保险赔偿以实际损失为限。", "(2)保险赔偿以实际损失为限额。"
    assert first_drop(a, b, NO_GROUP, list(RULES)) == "near_copy"
    assert first_drop(a, b, NO_GROUP, ["enumeration_sibling", "template_sibling"]) == (
        "enumeration_sibling")
    assert first_drop(a, b, NO_GROUP, []) is None


def test_resolve_rules_orders_and_checks_names():
    assert resolve_rules(["template_sibling", "near_copy"]) == ("near_copy", "template_sibling")
    assert all(resolve_rules(rules) == rules for rules in SCHEME_RULES.values())
    with pytest.raises(ValueError, match="unknown pair filter"):
        resolve_rules(["near_copies"])


def test_contained_copy_drops_a_run_in_copy_and_keeps_a_restated_headline():
    rule = RULES["contained_copy"]
    # the longer is the shorter with a headline run in and 认为 replaced: 2 edits besides it
    assert rule.drops("吴洪坚:基金经理的马拉松“基金管理是一项长跑运动,一小会儿的冒头没有意义。”",
                      "吴洪坚认为,基金管理是一项长跑运动,一小会儿的冒头没有意义。", NO_GROUP)
    # a headline (no clause mark) restated by the lead sentence is a rewrite
    assert not rule.drops("第二届中英互联网圆桌会议在京闭幕",
                          "第二届中英互联网圆桌会议7月23日上午在北京闭幕。", NO_GROUP)
    # three edits besides the insertion, or a shorter side under 10 letters: kept
    assert not rule.drops("他明天上午去北京开一个很长的会。", "他后天下午去上海开一个很长的会议。",
                          NO_GROUP)
    assert not rule.drops("明天去北京,", "我们明天一起去北京,好吗", NO_GROUP)
    assert rule.drops("明天上午我们去北京开会,", "据悉,明天上午九点我们一起去北京开会,", NO_GROUP)
