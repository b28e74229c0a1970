"""Text normalisation, a Chinese/mixed-text sentence splitter and countable sentence filters.

Everything here runs in time linear in the input length: every regular expression below is
a single pass without nested quantifiers, and the only look-backs are bounded to a few
characters, so a 1 MB string without punctuation is split in well under a second.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from types import MappingProxyType

_SURROGATES = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# C0/C1 controls other than tab and newline, and invisible format characters
# (soft hyphen, zero-width space/joiners, bidi marks, word joiner, BOM, annotation marks).
_CONTROLS = re.compile(
    "[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u00ad\u061c\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_NEWLINE_RUN = re.compile(r" ?\n[ \n]*")


def _require_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    return value


def normalise(text: str) -> str:
    """Return ``text`` in the canonical form every other function works on.

    Steps, in order: drop lone surrogates (they cannot be encoded); Unicode NFKC (full-width
    letters, digits and punctuation become half-width, e.g. ``，`` → ``,`` and ``…`` → ``...``);
    every line break (CR, VT, FF, NEL, U+2028/9, ...) becomes ``\\n``; control and invisible
    format characters are removed; runs of other whitespace (incl. U+3000) become one space;
    runs of whitespace containing a newline become one ``\\n``; leading/trailing whitespace is
    stripped. ``None`` or a non-``str`` raises ``TypeError``.
    """
    text = _require_str(text, "text")
    text = _SURROGATES.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROLS.sub("", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = _NEWLINE_RUN.sub("\n", text)
    return text.strip()


# ---------------------------------------------------------------------------------------------
# Splitting

_CLOSERS = "\"'”’』」)\\]】》〉"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f"
_URL = r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*[A-Za-z0-9/#=_\-]"
_CJK_NUMERAL = "一二三四五六七八九十"
# An enumeration marker inside a sentence (``2、``/``2.`` before a CJK character, ``(2)``,
# ``(二)``, ``二、``); whether it starts an item depends on the character before it
# (``_starts_item``). NFKC has turned ``②`` into a bare ``2``.
_INLINE_MARKER = (
    rf"\d{{1,2}}[、.](?=[{_CJK}])|\((?:\d{{1,2}}|[{_CJK_NUMERAL}]{{1,3}})\)"
    rf"|[{_CJK_NUMERAL}]{{1,3}}、"
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
# A news byline (``新浪体育讯``, ``本报讯 (记者 吴倩)``, ``(记者王浩)``, ``⊙本报记者 徐婧婧``,
# ``文/表 记者崔群``, the dateline ``新华网北京7月12日电``): it ends the headline run in
# before it and is a piece of its own.
_HAN = "\u4e00-\u9fff"
_BYLINE = (
    r"(?:本报|新浪(?:体育|娱乐|财经|科技|家居|教育|汽车|游戏|房产|网)?"
    r"|日报|晚报|晨报|商报|快报|时报|新报|都市报)讯"
    r"(?: ?\((?:见习)?记者[^()]{0,24}\))?"
    rf"|(?:新华网|新华社|中新网|中新社|中广网|人民网|本报)[{_HAN}]{{0,8}}?"
    r"[0-9一二三四五六七八九十]{1,3}月[0-9一二三四五六七八九十]{1,3}日(?:电|消息)?"
    r"|\((?:见习)?记者[ :/]?[^()]{1,24}\)"
    rf"|[⊙◎](?:本报)?记者 ?[{_HAN}]{{2,3}}(?=[ ,]|$)"
    rf"|文/(?:表 )?(?:本报)?记者 ?[{_HAN}]{{2,3}}(?=[ ,]|$)"
)
_BYLINE_START = "(?=[本新日晚晨商快时都人中(⊙◎文])"
"""A lookahead on the first characters of ``_BYLINE``: other positions fail at once."""
_BOUNDARY = re.compile(
    rf"(?P<url>{_URL})"
    rf"|(?P<byline>{_BYLINE_START}(?:{_BYLINE}))"
    rf"|(?P<end>(?:[。!?;]|\.\.+)+[{_CLOSERS}]*)"
    rf"|(?P<dot>\.[{_CLOSERS}]*)"
    r"|(?P<newline>\n)"
    rf"|(?P<marker>(?=[\d({_CJK_NUMERAL}])(?:{_INLINE_MARKER}))"
)
_SECONDARY = re.compile(r"[,:](?!\d)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc eg ie inc ltd co corp no fig al approx dept".split()
)
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_WORD_BEFORE_DOT = re.compile(r"[A-Za-z]{1,8}\Z")


def _dot_ends_sentence(text: str, start: int, end: int) -> bool:
    """Whether the single ``.`` at ``text[start]`` (closers up to ``end``) ends a sentence.

    Not an end: after a digit (decimals ``3.14``, list markers ``1.``), directly followed by an
    ASCII letter/digit (``a.b``, ``example.com``), followed by a lower-case word (``etc. and``),
    or after an abbreviation or a single initial (``Mr.``, ``e.g.``, ``J. K.``).
    """
    before = text[start - 1] if start else ""
    if before.isdigit():
        return False
    after = text[end : end + 2]
    if after[:1] in _ASCII_ALNUM or after[:1] == " " and after[1:2].islower():
        return False
    word = _WORD_BEFORE_DOT.search(text, max(0, start - 8), start)
    if word is None:
        return True
    return not (len(word.group()) == 1 or word.group().lower() in _ABBREVIATIONS)


def _starts_item(text: str, start: int) -> bool:
    """Whether the enumeration marker at ``text[start]`` starts a list item: after a CJK
    character or ``:;,)`` for ``2、``, ``2.``, ``(2)``, ``(二)`` (not after ``第``); only after
    ``:;,)`` for ``二、`` (``统一、规范`` is a coordination, not a list)."""
    before = text[start - 1] if start else ""
    if before in (":", ";", ",", ")"):
        return True
    cjk_numeral_first = text[start] in _CJK_NUMERAL
    return not cjk_numeral_first and before != "第" and bool(_CJK_CHAR.fullmatch(before))


def _sentence_spans(text: str) -> list[str]:
    """Cut normalised ``text`` after every sentence end (the end mark and closers stay),
    before every inline enumeration marker (``…责任保险2、车损险`` → ``…责任保险``,
    ``2、车损险``), and around a news byline (``…首周增幅超四成本报讯 (记者 吴倩) 股市大热``
    → ``…首周增幅超四成``, ``本报讯 (记者 吴倩)``, ``股市大热``)."""
    pieces = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        kind = match.lastgroup
        if kind == "byline":
            pieces += [text[start:match.start()], match.group()]
            start = match.end()
            continue
        if kind == "marker":
            if _starts_item(text, match.start()):
                pieces.append(text[start:match.start()])
                start = match.start()
            continue
        if (
            kind == "url"
            or kind == "dot"
            and not _dot_ends_sentence(text, match.start(), match.end())
        ):
            continue
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _hard_cut(clause: str, max_len: int) -> list[str]:
    """Cut into pieces of at most ``max_len`` characters, after a space in the second half of
    the window when there is one (so ASCII words stay whole), else exactly at ``max_len``."""
    pieces = []
    start = 0
    while len(clause) - start > max_len:
        end = clause.rfind(" ", start + max_len // 2, start + max_len) + 1 or start + max_len
        pieces.append(clause[start:end])
        start = end
    pieces.append(clause[start:])
    return pieces


def _recut(sentence: str, max_len: int) -> list[tuple[str, bool]]:
    """Re-cut a sentence longer than ``max_len`` at ``,:`` (greedy packing), then hard-cut.

    Returns ``(piece, hard_cut)`` pairs; every piece has at most ``max_len`` characters.
    This is the idea of the reference ``text_segmentate(text, maxlen, seps)``; ``、`` is not a
    cut point, it joins the items of one coordinated phrase (``工厂的厂长、公司的董事长``).
    """
    if len(sentence) <= max_len:
        return [(sentence, False)]
    clauses = []
    start = 0
    for match in _SECONDARY.finditer(sentence):
        clauses.append(sentence[start : match.end()])
        start = match.end()
    clauses.append(sentence[start:])
    out: list[tuple[str, bool]] = []
    current = ""
    for clause in clauses:
        if len(current) + len(clause) <= max_len:
            current += clause
            continue
        if current.strip():
            out.append((current.strip(), False))
        current = clause
        if len(clause) > max_len:
            out.extend((piece.strip(), True) for piece in _hard_cut(clause, max_len))
            current = ""
    if current.strip():
        out.append((current.strip(), False))
    return [(piece, hard) for piece, hard in out if piece]


# ---------------------------------------------------------------------------------------------
# Filters

TOO_LONG = "too_long"
HEADLINE_RUN_IN = "headline_run_in"
BYLINE = "byline"
LEAD_IN = "lead_in"
MARKUP = "markup"
URL_OR_EMAIL = "url_or_email"
MASKED = "masked"
BROKEN_BRACKET = "broken_bracket"
BULLET_HEADING = "bullet_heading"
TOO_SHORT = "too_short"
MOSTLY_SYMBOLS = "mostly_symbols"
LOW_CJK_RATIO = "low_cjk_ratio"
FILTER_RULES = (TOO_LONG, HEADLINE_RUN_IN, BYLINE, LEAD_IN, MARKUP, URL_OR_EMAIL, MASKED,
                BROKEN_BRACKET, BULLET_HEADING, TOO_SHORT,
                MOSTLY_SYMBOLS, LOW_CJK_RATIO)
"""Names of the sentence filter rules, in the order they are checked (first failure counts)."""

_BYLINE_PIECE = re.compile(f"{_BYLINE_START}(?:{_BYLINE})")
_NON_CJK_WORD = re.compile(rf"[^\W{_CJK}_]+")
_URL_ANYWHERE = re.compile(_URL)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+")
# MediaWiki language conversion ``-{zh-hans:A;zh-hant:B}-`` / ``-{A}-`` (keep the first variant)
_WIKI_CONVERSION = re.compile(r"-\{(?:[a-z]{2}(?:-[a-z]{2,4})?:)?([^;{}]*)[^{}]{0,500}?\}-")
_HTML_BREAK = re.compile(r"<(?:br|p|/p|li|/li|div|/div)\s*/?>", re.IGNORECASE)
_MARKUP_LEFT = re.compile(
    r"(?=[-{}\[\]<zf_])(?:-\{|\}-|\{\{|\}\}|\[\[|\]\]|</?[A-Za-z][A-Za-z0-9]{0,9}(?:\s[^<>]{0,80})?/?>"
    r"|\bzh-[a-z]{2,4}:|formula_\d|_{3,})"
)
# Source masking: ``*``/``#`` between CJK characters (``中*人*共*国``, ``香*``-``*院``), a run
# of two or more touching a CJK character (``**系统``), or ``#`` after a digit (``5##元``).
_MASK = re.compile(
    rf"(?<=[{_CJK}])[*#]+(?=[{_CJK}])|[*#]{{2,}}(?=[{_CJK}])|(?<=[{_CJK}])[*#]{{2,}}"
    rf"|(?<=[{_CJK}])\*(?=[,.;:!?)]|$)|(?:^|(?<=[(,:;]))\*(?=[{_CJK}])|(?<=\d)#"
)


# Headline parts are separated by spaces (``中国住宅寿命平均30多年 发达国家一般超过70年``):
# a space between two CJK characters (or a closing bracket/mark and a CJK character).
_TITLE_GAP = re.compile(rf"[{_CJK}》)”!?] +[{_CJK}《(“0-9A-Za-z]")
CLAUSE_MARK = re.compile(r"[,。;:!?]")
"""The marks that end a clause or a sentence (after ``normalise``)."""
HEADLINE_CLAUSE = 30
"""A document's first piece whose first clause is longer than this (characters) is a headline
run into the body (``headline_run_in``)."""


def headline_run_in(piece: str) -> bool:
    """Whether ``piece``, the first piece of a document, is a news headline run into the body
    with no separator (``价位太高成局限虽然上述材料具备很好的装饰效果,``): a space between CJK
    characters (headline parts) before the last clause mark ``,。;:!?`` (body text after the
    headline), or a first clause (up to the first clause mark) of more than
    ``HEADLINE_CLAUSE`` (30) characters. A headline alone (``电影《星空》主题曲MV首发 五月天特别
    创作``) and the short first clause of an encyclopedia article pass."""
    marks = [m.start() for m in CLAUSE_MARK.finditer(piece)]
    if marks and _TITLE_GAP.search(piece, 0, marks[-1]):
        return True
    return len(piece[:marks[0]] if marks else piece) > HEADLINE_CLAUSE


_BULLET = re.compile("[●◎■□▲△★☆◆◇•]")


def broken_bracket(sentence: str) -> bool:
    """Whether ``sentence`` was cut inside a title or a parenthesis: a ``》`` or ``)`` before
    the ``《``/``(`` that opens it (``the Seer》专辑…``, ``BPM)、业务流程再造…``), or a ``《``
    never closed (``…从《南京!``)."""
    depth = {"《": 0, "(": 0}
    for ch in sentence:
        if ch in depth:
            depth[ch] += 1
        elif ch in "》)":
            opener = "《" if ch == "》" else "("
            depth[opener] -= 1
            if depth[opener] < 0:
                return True
    return depth["《"] > 0


def clean_markup(text: str) -> str:
    """``text`` (normalised) with wiki conversion markup resolved to its first variant
    (``-{zh-hans:卡尔顿;zh-hk:卡顿}-`` → ``卡尔顿``, ``-{后}-`` → ``后``) and HTML line
    breaks (``<br>``, ``<p>``, ``<li>``, ``<div>``) turned into newlines."""
    return _HTML_BREAK.sub("\n", _WIKI_CONVERSION.sub(r"\1", text))


@dataclass(frozen=True)
class Filters:
    """Sentence filters; each rule drops a sentence and is counted under its name.

    - ``too_long``: the sentence had no ``,:`` within ``max_len`` characters and was
      hard-cut (``drop_hard_cut``); hard-cut fragments are arbitrary, not sentences.
    - ``headline_run_in``: the first piece of a text is a headline run into the body
      (``drop_headline_run_in``, documents only; ``headline_run_in``). Checked by
      ``split_with_stats``, which knows a piece's position.
    - ``byline``: the piece is a news byline (``新浪体育讯``, ``本报讯 (记者 吴倩)``), cut out
      by the splitter.
    - ``lead_in``: it ends with ``:``, the lead-in of a list whose items follow as sentences
      of their own (``办理流程如下:``, ``被保险人必须具备下列条件:``).
    - ``markup``: wiki or HTML markup is left after ``clean_markup`` (``-{``, ``}}``,
      ``[[``, ``<tag>``, ``zh-hant:``), a stripped-formula placeholder (``formula_3``) or a
      form blank (``_____``).
    - ``url_or_email``: it holds a URL (``http://``, ``www.``) or an e-mail address.
    - ``masked``: the source masked characters with ``*``/``#`` (``中*人*共*国``, ``*院病历``,
      ``5##元``; ``drop_masked``): the sentence is no longer the text it was.
    - ``broken_bracket``: it was cut inside a ``《》`` title or a parenthesis
      (``drop_broken_brackets``; ``broken_bracket``).
    - ``bullet_heading``: it begins with a bullet sign (``●◎■□▲△★☆◆◇•``): a sub-heading or
      bullet item run into the sentence after it (``●专家观点房价将持续小幅下滑多位专家认为,…``).
    - ``too_short``: fewer than ``min_chars`` letters/digits (``str.isalnum``).
    - ``mostly_symbols``: share of non-space characters that are digits, punctuation, symbols
      or part of a URL is greater than ``max_symbol_ratio``.
    - ``low_cjk_ratio``: CJK characters / (CJK characters + runs of other letters/digits)
      is below ``min_cjk_ratio``; an English word or a number counts as one unit, so
      ``iPhone12怎么样`` has ratio 3/5.
    """

    min_chars: int = 5
    drop_hard_cut: bool = True
    drop_masked: bool = True
    drop_headline_run_in: bool = False
    drop_broken_brackets: bool = True
    max_symbol_ratio: float = 0.5
    min_cjk_ratio: float = 0.5

    def rejection(self, sentence: str, hard_cut: bool = False) -> str | None:
        """Name of the first rule ``sentence`` fails, or ``None`` when it passes."""
        if hard_cut and self.drop_hard_cut:
            return TOO_LONG
        if _BYLINE_PIECE.fullmatch(sentence):
            return BYLINE
        if sentence.endswith(":"):
            return LEAD_IN
        if _MARKUP_LEFT.search(sentence):
            return MARKUP
        if _URL_ANYWHERE.search(sentence) or "@" in sentence and _EMAIL.search(sentence):
            return URL_OR_EMAIL
        if self.drop_masked and ("*" in sentence or "#" in sentence) and _MASK.search(sentence):
            return MASKED
        if self.drop_broken_brackets and broken_bracket(sentence):
            return BROKEN_BRACKET
        if _BULLET.match(sentence):
            return BULLET_HEADING
        alnum = sum(map(str.isalnum, sentence))
        if alnum < self.min_chars:
            return TOO_SHORT
        visible = len(sentence) - sentence.count(" ")
        letters = sum(map(str.isalpha, sentence))
        letters -= sum(sum(map(str.isalpha, url)) for url in _URL_ANYWHERE.findall(sentence))
        if visible - letters > self.max_symbol_ratio * visible:
            return MOSTLY_SYMBOLS
        cjk = len(_CJK_CHAR.findall(sentence))
        units = cjk + len(_NON_CJK_WORD.findall(sentence))
        if cjk < self.min_cjk_ratio * units:
            return LOW_CJK_RATIO
        return None


DEFAULT_FILTERS = Filters()
QUESTION_FILTERS = Filters(min_chars=3, drop_broken_brackets=False)
"""Filters of whole questions (``question`` scheme): real questions can be 3-4 characters
(``能贷不能``), and a whole text is never cut inside brackets; answers keep
``DEFAULT_FILTERS``."""
DOCUMENT_FILTERS = Filters(drop_headline_run_in=True)
"""Filters of documents (``doc`` scheme): ``DEFAULT_FILTERS`` and a first piece that is a
headline run into the body is dropped (news articles; docs/similarity.md has the judged
figures)."""
SCHEME_FILTERS = MappingProxyType(
    {"qa": DEFAULT_FILTERS, "doc": DOCUMENT_FILTERS, "question": QUESTION_FILTERS})
"""Scheme name → the sentence filters of its texts (answers, documents, whole questions)."""


def split_with_stats(
    text: str, max_len: int = 64, filters: Filters | None = DEFAULT_FILTERS
) -> tuple[list[str], Counter]:
    """Split ``text`` into normalised sentences and count the sentences each filter dropped.

    Returns ``(sentences, dropped)`` where ``dropped[rule]`` is the number of sentences the
    rule named in ``FILTER_RULES`` removed (rules that removed nothing are absent).
    ``filters=None`` keeps every piece: then no non-whitespace character of
    ``normalise(text)`` is lost (markup is only cleaned, ``clean_markup``, when filtering).
    Sentences end after ``。!?;``, an ellipsis (``...``,
    ``……``), a sentence-final ``.`` or a newline, together with any closing quotes/brackets;
    sentences longer than ``max_len`` characters are re-cut (see ``_recut``).
    """
    text = normalise(text)
    if filters is not None:
        text = clean_markup(text)
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive int, got {max_len!r}")
    sentences: list[str] = []
    dropped: Counter = Counter()
    pieces = (piece for span in _sentence_spans(text) for piece in _recut(span, max_len))
    for index, (sentence, hard_cut) in enumerate(pieces):
        rule = None
        if filters is not None:
            rule = filters.rejection(sentence, hard_cut)
            if (rule is None and index == 0 and filters.drop_headline_run_in
                    and headline_run_in(sentence)):
                rule = HEADLINE_RUN_IN
        if rule is None:
            sentences.append(sentence)
        else:
            dropped[rule] += 1
    return sentences, dropped


def split_sentences(
    text: str, max_len: int = 64, filters: Filters | None = DEFAULT_FILTERS
) -> list[str]:
    """Normalised sentences of ``text`` with the filters applied (see ``split_with_stats``)."""
    return split_with_stats(text, max_len, filters)[0]
