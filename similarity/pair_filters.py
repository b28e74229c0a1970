"""Pair filters: named rules that drop an admitted pair which teaches a generator nothing.

A pair can score inside its scheme's band and still be no similar-sentence pair: two copies of
one sentence that differ by a list marker, two numbered items of one list, two lines of one
template that differ in a date or one slot, or a copied boilerplate sentence. Each rule below
is one small class in the style of datatrove's filters: a ``name`` (the counter
``pairs_dropped_<name>`` and the audit file ``_dropped-<name>.jsonl``), a docstring stating the
exact rule, and a pure ``drops(a, b, group) -> bool`` on the two sentences and a ``GroupView``
of what the pipeline knows about their group and input. ``first_drop`` applies the rules in
``RULES`` order; a pair is counted under the first rule that drops it. Which rules each scheme
uses (``SCHEME_RULES``) and why, with the judged figures: docs/similarity.md.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import jieba
from rapidfuzz.distance import Levenshtein

from similarity.jaccard import content
from similarity.text import CLAUSE_MARK

_CJK_DIGITS = "零〇一二两三四五六七八九十百千"
_CJK_VALUE = {ch: v for v, chars in enumerate(("零〇", "一", "二两", "三", "四", "五", "六", "七",
                                                 "八", "九")) for ch in chars}
_MARKER = re.compile(
    rf"\s*(?:"
    rf"\((?P<paren_arabic>\d{{1,3}})\)"
    rf"|\((?P<paren_cjk>[{_CJK_DIGITS}]{{1,4}})\)"
    rf"|(?P<arabic>\d{{1,3}})(?:[、.)]|\s)(?!\d)"
    rf"|(?P<cjk>[{_CJK_DIGITS}]{{1,4}})[、.]"
    rf"|第(?P<ordinal>[{_CJK_DIGITS}]{{1,6}})(?=[条章节是名关项步类次个种点,、:])"
    rf"|(?P<letter>[A-Za-z])[、)]"
    rf")"
)
_NUMBER_RUN = re.compile(rf"[0-9{_CJK_DIGITS}]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
jieba.setLogLevel(logging.WARNING)
_HEDGE = re.compile(
    "^(?:您好|你好|亲|是的|对的|可以的|当然|其实|一般来说|另外|因此|所以|但是|不过|同时|此外)+")


def cjk_number(text: str) -> int | None:
    """Value of a Chinese numeral below 10,000 (``三`` 3, ``十二`` 12, ``二十`` 20,
    ``一百一十八`` 118); ``None`` when ``text`` is not one."""
    total, digit = 0, None
    for ch in text:
        if ch in _CJK_VALUE:
            digit = _CJK_VALUE[ch]
        elif ch in "十百千":
            total += (1 if digit is None else digit) * {"十": 10, "百": 100, "千": 1000}[ch]
            digit = None
        else:
            return None
    return total + (digit or 0)


def leading_marker(sentence: str) -> tuple[str, int] | None:
    """``(family, rank)`` of the enumeration marker ``sentence`` begins with, else ``None``.

    Families: ``arabic`` (``2、``, ``2.``, ``2)``, ``2 `` not followed by a digit),
    ``paren_arabic`` (``(2)``), ``cjk`` (``二、``), ``paren_cjk`` (``(二)``), ``ordinal``
    (``第二`` before 条章节是名关项步类次个种点 or ``,、:``), ``letter`` (``b、``, ``b)``;
    rank a = 1). Input is ``normalise``d text: half-width brackets, and ``②`` is already ``2``
    (NFKC), so circled numbers count as ``arabic`` when followed by ``、.)``.
    """
    match = _MARKER.match(sentence)
    if match is None:
        return None
    family = match.lastgroup
    value = match.group(family)
    if family in ("arabic", "paren_arabic"):
        return family, int(value)
    if family == "letter":
        return family, ord(value.casefold()) - ord("a") + 1
    rank = cjk_number(value)
    return None if rank is None else (family, rank)


def unmarked(sentence: str) -> str:
    """``content`` (letters and digits, case-folded) of ``sentence`` without its leading
    enumeration marker (see ``leading_marker``)."""
    match = _MARKER.match(sentence)
    return content(sentence[match.end():] if match else sentence)


def skeleton(sentence: str) -> str:
    """``unmarked(sentence)`` with every run of digits and Chinese numerals replaced by ``0``:
    ``2004年12月至2008年3月任`` → ``0年0月至0年0月任``."""
    return _NUMBER_RUN.sub("0", unmarked(sentence))


def frame(sentence: str, chars: int) -> str | None:
    """The first ``chars`` characters of ``skeleton(sentence)`` when they hold a number
    (``0``), else ``None``: the frame of a dated or numbered line (CV lines, schedules)."""
    head = skeleton(sentence)[:chars]
    return head if len(head) == chars and "0" in head else None


def numbers(sentence: str) -> frozenset[str]:
    """The numbers written in digits in ``sentence`` (decimals whole: ``5.7%`` → ``5.7``)."""
    return frozenset(_NUMBER.findall(sentence))


@lru_cache(maxsize=65536)
def content_words(sentence: str) -> frozenset[str]:
    """The jieba words of ``sentence`` with at least 2 letters or digits (``content``), numbers
    excluded: ``保险公司应当在30日内赔付`` → {保险公司, 应当, 日内, 赔付}. One-character words
    (的, 是, 在, 日) carry little, and a sentence's numbers are compared by ``numbers``.
    Cached, because a sentence recurs in many pairs of its group."""
    words = (content(word) for word in jieba.cut(sentence))
    return frozenset(w for w in words if len(w) >= 2 and _NUMBER.fullmatch(w) is None)


def shared_ends(x: str, y: str) -> tuple[int, int]:
    """``(p, q)``: lengths of the common prefix and of the common suffix of ``x`` and ``y``
    that does not overlap it (p + q <= min(len(x), len(y)))."""
    shortest = min(len(x), len(y))
    p = 0
    while p < shortest and x[p] == y[p]:
        p += 1
    q = 0
    while q < shortest - p and x[-1 - q] == y[-1 - q]:
        q += 1
    return p, q


@dataclass(frozen=True)
class GroupView:
    """What the rules may know beyond the two sentences, from the group's admitted pairs.

    ``frames``: frame (``frame(s, FRAME_CHARS)``) → number of distinct sentences of the group
    that have it, counted over the sentences of the group's admitted pairs.
    ``partners``: sentence → number of distinct sentences of the group it is admitted with.
    ``boilerplate``: sentences that occur in at least ``--boilerplate_groups`` groups of the
    input (counted by the pipeline over every group's distinct sentences).
    """

    frames: Mapping[str, int] = field(default_factory=dict)
    partners: Mapping[str, int] = field(default_factory=dict)
    boilerplate: Collection[str] = frozenset()


FRAME_CHARS = 6


def group_view(pairs: Iterable[tuple[str, str]],
               boilerplate: Collection[str] = frozenset()) -> GroupView:
    """``GroupView`` of a group whose admitted pairs are ``pairs`` (repeats, in either order,
    are counted once)."""
    partners = Counter(text for pair in {tuple(sorted(p)) for p in pairs} for text in pair)
    frames = Counter(key for text in partners if (key := frame(text, FRAME_CHARS)) is not None)
    return GroupView(frames=dict(frames), partners=dict(partners), boilerplate=boilerplate)


class Boilerplate:
    """Drop a pair when either sentence is boilerplate: it occurs (after ``normalise``) in at
    least ``--boilerplate_groups`` different groups of the input (copied regulations, ads,
    sign-offs), so it pairs with whatever resembles it in every group."""

    name = "boilerplate"

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        return a in group.boilerplate or b in group.boilerplate


class NearCopy:
    """Drop a near-copy: with u, v = ``unmarked`` a and b (letters and digits only, leading
    list marker removed) without a leading hedge or connective (您好, 你好, 是的, 可以的,
    其实, 因此, 但是, ...), one contains the other; or the shorter has at least
    ``min_insert`` (6) characters and the longer is it with one span inserted (the common
    prefix and suffix, ``shared_ends``, cover the shorter); or the Levenshtein distance
    d(u, v) <= min(``max_edits``, ``edit_share`` · max(|u|, |v|)) = min(2, 0.2 · longer):
    the pair differs by a list marker, punctuation, a hedge or an inserted clause, or one or
    two characters of a long enough sentence (``生效不退`` / ``生效就不能退`` stays)."""

    name = "near_copy"
    max_edits = 2
    edit_share = 0.2
    min_insert = 6

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        u, v = _HEDGE.sub("", unmarked(a)), _HEDGE.sub("", unmarked(b))
        if u in v or v in u:
            return True
        shorter = min(len(u), len(v))
        if shorter >= self.min_insert and sum(shared_ends(u, v)) >= shorter:
            return True
        bound = min(self.max_edits, self.edit_share * max(len(u), len(v)))
        return Levenshtein.distance(u, v, score_cutoff=self.max_edits + 1) <= bound


class ContainedCopy:
    """Drop a pair whose shorter side is found in the longer up to ``max_edits`` (2) edits
    besides insertions: with u, v the two sides as ``NearCopy`` compares them (``unmarked``,
    leading hedge removed), |u| <= |v| and |u| >= ``min_chars`` (10),
    Levenshtein(u, v) - (|v| - |u|) <= 2. The longer is the shorter with a headline, a name
    or a clause run in and a character or two changed (``吴洪坚:基金经理的马拉松“基金管理是一项
    长跑运动,…”`` / ``吴洪坚认为,基金管理是一项长跑运动,…``). A shorter side without a clause
    mark ``,。;:!?`` is kept: a headline that the longer restates is a rewrite
    (``第二届中英互联网圆桌会议在京闭幕`` / ``第二届中英互联网圆桌会议7月23日上午在北京闭幕。``)."""

    name = "contained_copy"
    max_edits = 2
    min_chars = 10

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        (u, raw), (v, _) = sorted(((_HEDGE.sub("", unmarked(t)), t) for t in (a, b)),
                                  key=lambda side: len(side[0]))
        if len(u) < self.min_chars or CLAUSE_MARK.search(raw) is None:
            return False
        inserted = len(v) - len(u)
        bound = inserted + self.max_edits
        return Levenshtein.distance(u, v, score_cutoff=bound) <= bound


class EnumerationSibling:
    """Drop two items of one numbered list: both sentences begin with markers of the same
    family (see ``leading_marker``: ``(三)``/``(四)``, ``2、``/``3、``, ``第一``/``第二``,
    ``b、``/``c、``) and different ranks."""

    name = "enumeration_sibling"

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        ma, mb = leading_marker(a), leading_marker(b)
        return ma is not None and mb is not None and ma[0] == mb[0] and ma[1] != mb[1]


class TemplateSibling:
    """Drop two lines of one template. With p, q the common prefix and suffix of
    ``skeleton(a)`` and ``skeleton(b)`` (digits and Chinese numerals masked as ``0``) and the
    middles left over, the pair is dropped when

    - both middles have at most ``max_span`` (4) characters and p + q >= ``min_shared`` (4):
      the same text up to numbers and one short slot (增仓/减仓, 高/低风险, 重复10次/50次), or
    - a and b have the same frame (``frame``: the first 6 skeleton characters, holding a
      number) and at least ``min_siblings`` (3) sentences of the group have it: a dated or
      numbered series (CV lines ``0年0月至0年0月任``, schedules, item lists).
    """

    name = "template_sibling"
    max_span = 4
    min_shared = 4
    min_siblings = 3

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        sa, sb = skeleton(a), skeleton(b)
        p, q = shared_ends(sa, sb)
        if (len(sa) - p - q <= self.max_span and len(sb) - p - q <= self.max_span
                and p + q >= self.min_shared):
            return True
        fa = frame(a, FRAME_CHARS)
        return fa is not None and fa == frame(b, FRAME_CHARS) and (
            group.frames.get(fa, 0) >= self.min_siblings)


class NumberMismatch:
    """Drop two sentences that state different figures: each holds a number (``numbers``,
    digits) that the other lacks (``上涨5.7%,收报0.714元`` / ``上涨8.1%,收报0.937元``, ``备弹440发``
    / ``备弹320发``, two dates of one schedule). One side with no number, or one side's numbers
    all found in the other, is kept: a rewording may leave a figure out."""

    name = "number_mismatch"

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        na, nb = numbers(a), numbers(b)
        return bool(na - nb) and bool(nb - na)


class FewSharedWords:
    """Drop a pair that shares fewer than ``min_shared`` (3) ``content_words`` (jieba words of
    >= 2 letters, numbers excluded): character overlap alone (one topic's characters, a shared
    skeleton) without the words of one statement."""

    name = "few_shared_words"
    min_shared = 3

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        return len(content_words(a) & content_words(b)) < self.min_shared


class Series:
    """Drop a pair when both sentences are admitted with other sentences of the group too
    (``partners`` >= ``min_partners`` (2) each): a sentence that resembles several sentences of
    one document is one of a parallel series (the items of a list, one template with other
    slots, a headline repeated over sections), and the pair is one of many alike. A sentence
    with one partner, paired with a sentence that has several, is kept."""

    name = "series"
    min_partners = 2

    def drops(self, a: str, b: str, group: GroupView) -> bool:
        return min(group.partners.get(a, 1), group.partners.get(b, 1)) >= self.min_partners


RULES = {rule.name: rule for rule in (Boilerplate(), NearCopy(), ContainedCopy(),
                                      EnumerationSibling(), TemplateSibling(), NumberMismatch(),
                                      FewSharedWords(), Series())}
"""Rule name → rule, in the order ``first_drop`` applies them."""

SCHEME_RULES = {
    "qa": ("near_copy", "contained_copy", "enumeration_sibling", "template_sibling",
           "number_mismatch"),
    "doc": ("near_copy", "contained_copy", "enumeration_sibling", "template_sibling",
            "number_mismatch", "few_shared_words", "series"),
    "question": ("near_copy",),
}
"""Default rules per scheme (``--pair_filters``); chosen on judged pairs, docs/similarity.md."""

DEFAULT_BOILERPLATE_GROUPS = 3
"""Default ``--boilerplate_groups``: a sentence in this many groups of the input is boilerplate."""


def resolve_rules(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` in ``RULES`` order, checked; raises ``ValueError`` naming an unknown rule."""
    names = set(names)
    unknown = sorted(names - set(RULES))
    if unknown:
        raise ValueError(f"unknown pair filter(s) {unknown}; known: {list(RULES)}")
    return tuple(name for name in RULES if name in names)


def first_drop(a: str, b: str, group: GroupView, rules: Iterable[str]) -> str | None:
    """Name of the first rule of ``rules`` (``RULES`` order) that drops (a, b), else ``None``."""
    for name in rules:
        if RULES[name].drops(a, b, group):
            return name
    return None


def group_drops(pairs: Sequence[tuple[str, str]], rules: Sequence[str],
                boilerplate: Collection[str] = frozenset()) -> list[str | None]:
    """``first_drop`` of every admitted pair of one group, the ``GroupView`` built from them."""
    view = group_view(pairs, boilerplate)
    return [first_drop(a, b, view, rules) for a, b in pairs]
