"""Record formats shared by every pipeline: input groups, the pair Parquet schema, dead letters.

Output rows (``PAIR_SCHEMA``, never inferred)::

    text_a    string   first sentence; canonical order: text_a < text_b (code-point order)
    text_b    string   second sentence
    score     float32  similarity(text_a, text_b) with the run's variant, low <= score < high
    scheme    string   'qa' | 'doc' | 'question'
    group_id  string   ``id`` of the input record the pair came from (the smallest id when the
                       same pair arose in several groups)

Dead letters (one JSON object per line in ``_rejected-SSSSS-of-NNNNN.jsonl``)::

    {"source": "path/of/input.jsonl", "line_no": 17, "reason": "invalid_json",
     "detail": "Expecting ',' delimiter: line 1 column 20 (char 19)",
     "record": "<the offending line, at most 1,000 characters>", "record_bytes": 412}

``line_no`` is 1-based (the row number for Parquet inputs, ``null`` when a whole file failed).
``reason`` is one of ``REASONS``.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import pyarrow as pa

from pipelines.hashing import content_digest

PAIR_SCHEMA = pa.schema(
    [
        ("text_a", pa.string()),
        ("text_b", pa.string()),
        ("score", pa.float32()),
        ("scheme", pa.string()),
        ("group_id", pa.string()),
    ]
)
PAIR_COLUMNS = tuple(PAIR_SCHEMA.names)
PAIR_SCHEMES = ("qa", "doc", "question")

PAIRS_PREFIX = "pairs"
REJECTED_PREFIX = "_rejected"
SUMMARY_FILE = "_summary.json"
DROPPED_AUDIT_PREFIX = "_dropped"
SHARD_TEMPLATE = "-SSSSS-of-NNNNN"

DEAD_LETTER_FIELDS = ("source", "line_no", "reason", "detail", "record", "record_bytes")
RECORD_EXCERPT_CHARS = 1000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

REASONS = {
    "too_large": "line longer than --max_record_bytes",
    "invalid_utf8": "bytes are not valid UTF-8, or the id holds a lone surrogate (\\ud800)",
    "blank_line": "empty or whitespace-only line",
    "invalid_json": "not parseable as JSON (raw control characters inside strings are allowed)",
    "not_object": "JSON value is not an object",
    "missing_field": "a required field is absent or null",
    "wrong_type": "a field has the wrong type",
    "empty_id": "the id is an empty string",
    "empty_list": "the list of texts is empty",
    "no_text": "no text is a non-empty string",
    "invalid_record": "validating (or, for Parquet, converting) the record raised an error",
    "unreadable_file": "the file could not be read to its end",
    "unreadable_rows": "a Parquet row group could not be decoded (its rows and count in detail)",
}


class Rejected(ValueError):
    """A record that cannot be used; ``reason`` is a key of ``REASONS``."""

    def __init__(self, reason: str, detail: str):
        if reason not in REASONS:
            raise KeyError(f"unknown dead-letter reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Group(NamedTuple):
    """Texts that share one input record: answers of a question, or the one text of a document.

    Pairs are drawn from the sentences of ``texts``; with ``cross_text_only`` a pair must join
    sentences of two different texts (the QA rule: never two sentences of one answer).
    """

    group_id: str
    texts: tuple[str, ...]


def dead_letter(
    source: str, line_no: int | None, reason: str, detail: str, record: str | bytes, size: int
) -> dict[str, Any]:
    """The dead-letter record; ``record`` is cut to ``RECORD_EXCERPT_CHARS`` characters."""
    if isinstance(record, bytes):
        record = record[: 4 * RECORD_EXCERPT_CHARS].decode("utf-8", "backslashreplace")
    return {
        "source": source,
        "line_no": line_no,
        "reason": reason,
        "detail": detail,
        "record": record[:RECORD_EXCERPT_CHARS],
        "record_bytes": size,
    }


def encodable(group: Group) -> tuple[Group, int]:
    """``group`` with lone surrogates (``\\ud800``-``\\udfff``, from JSON escapes) removed from
    its texts, and how many texts had one; an id with one is rejected (``invalid_utf8``).

    Such strings cannot be encoded as UTF-8 by Beam's coders or by Parquet. Removing them
    changes no sentence: ``similarity.normalise`` drops them before anything else.
    """
    bad = _LONE_SURROGATE.search(group.group_id)
    if bad:
        raise Rejected("invalid_utf8", f"field 'id' has a lone surrogate at {bad.start()}")
    texts = tuple(_LONE_SURROGATE.sub("", text) for text in group.texts)
    return group._replace(texts=texts), sum(a != b for a, b in zip(texts, group.texts))


def too_large_detail(size: int, limit: int) -> str:
    return f"{size} bytes > --max_record_bytes={limit}"


def _field(obj: dict[str, Any], name: str) -> Any:
    value = obj.get(name)
    if value is None:
        raise Rejected("missing_field", f"field {name!r} is missing or null")
    return value


def _string(obj: dict[str, Any], name: str) -> str:
    value = _field(obj, name)
    if not isinstance(value, str):
        raise Rejected("wrong_type", f"field {name!r} is {type(value).__name__}, not string")
    return value


def _group_id(obj: dict[str, Any]) -> str:
    group_id = _string(obj, "id")
    if not group_id.strip():
        raise Rejected("empty_id", "field 'id' is an empty string")
    return group_id


def _text_list(obj: dict[str, Any], name: str) -> list[str]:
    values = _field(obj, name)
    if not isinstance(values, list):
        raise Rejected("wrong_type", f"field {name!r} is {type(values).__name__}, not list")
    for k, value in enumerate(values):
        if not isinstance(value, str):
            raise Rejected("wrong_type", f"{name}[{k}] is {type(value).__name__}, not string")
    return values


def qa_group(obj: dict[str, Any]) -> Group:
    """``{"id": str, "question": str (optional), "answers": [str, ...]}`` → Group of answers."""
    group_id = _group_id(obj)
    question = obj.get("question")
    if question is not None and not isinstance(question, str):
        raise Rejected("wrong_type", f"field 'question' is {type(question).__name__}, not string")
    answers = _text_list(obj, "answers")
    if not answers:
        raise Rejected("empty_list", "field 'answers' is an empty list")
    if not any(answer.strip() for answer in answers):
        raise Rejected("no_text", f"all {len(answers)} answers are empty")
    return Group(group_id, tuple(answers))


def doc_group(obj: dict[str, Any]) -> Group:
    """``{"id": str, "text": str}`` → Group with one text."""
    group_id = _group_id(obj)
    text = _string(obj, "text")
    if not text.strip():
        raise Rejected("no_text", "field 'text' is empty")
    return Group(group_id, (text,))


def question_group(obj: dict[str, Any]) -> Group:
    """A group of similar questions → Group with one text per question.

    Two formats: ``{"id": str, "texts": [str, ...]}``, and the reference SimBERT format
    ``{"text": str, "synonyms": [str, ...]}`` (chosen when ``texts`` is absent) → texts
    ``[text] + synonyms``; its ``id`` is optional and defaults to ``"text-"`` + the hex of
    ``hashing.content_digest(0, text)``, so the same record always gets the same id.
    """
    if "texts" in obj or "synonyms" not in obj and "text" not in obj:
        group_id = _group_id(obj)
        texts = _text_list(obj, "texts")
    else:
        text = _string(obj, "text")
        texts = [text, *_text_list(obj, "synonyms")]
        group_id = _group_id(obj) if "id" in obj else "text-" + content_digest(0, text).hex()
    if not texts:
        raise Rejected("empty_list", "field 'texts' is an empty list")
    if not any(text.strip() for text in texts):
        raise Rejected("no_text", f"all {len(texts)} texts are empty")
    return Group(group_id, tuple(texts))


def json_size(obj: Any) -> int:
    """UTF-8 size in bytes of ``obj`` as compact JSON (how a Parquet row is sized)."""
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode())
