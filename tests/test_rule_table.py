"""benchmarks/rule_table.py: label counts of what each rule drops, with group context."""

from benchmarks import rule_table
from similarity.calibrate import JudgedPair, write_judged

CV = ["2001年3月至2004年6月任华南理工大学副校长。", "2004年6月至2008年1月任广州市副市长。",
      "2008年1月至2012年5月任广东省委常委。"]

LEAVE = ["已满1年不满10年的,年休假5天。", "已满10年不满20年的,年休假10天。"]


def pair(a: str, b: str, label: str) -> JudgedPair:
    return JudgedPair(a, b, 0.5, "doc", label, "why")


def test_rule_counts_use_the_group_and_count_each_pair_once(tmp_path):
    contexts = rule_table.Contexts("doc", [{"id": "cv", "text": "".join(CV)},
                                           {"id": "other", "text": LEAVE[0] + LEAVE[1]}])
    write_judged(tmp_path / "a.tsv", [pair(CV[0], CV[1], "N"), pair(*LEAVE, "N"),
                                      pair("不在样本里的句子。", "也不在样本里。", "P")])
    write_judged(tmp_path / "b.tsv", [pair(CV[1], CV[0], "N")])  # the same pair again
    pairs = rule_table.judged_pairs(tmp_path)["doc"]
    assert len(pairs) == 3
    rows = rule_table.rule_counts(pairs, contexts, question=False)
    assert rows["all"] == {"N": 2, "P": 1}
    assert rows["not emitted any more"] == {"P": 1}
    # the CV pair only through the group's three-sentence frame, the other by one slot
    assert rows["pair: template_sibling"] == {"N": 2}
    assert "pair: near_copy" not in rows
    table = rule_table.markdown("doc", rows)
    assert "| pair: template_sibling | 0 | 0 | 2 | 0 | 0 | 0% of 2 |" in table
