"""Input validation rules, dead-letter records and the pair schema constant."""

import pyarrow as pa
import pytest

from pipelines.schema import (
    PAIR_SCHEMA,
    REASONS,
    RECORD_EXCERPT_CHARS,
    Group,
    Rejected,
    dead_letter,
    doc_group,
    encodable,
    json_size,
    qa_group,
)


def test_pair_schema_is_the_shared_contract():
    assert PAIR_SCHEMA == pa.schema([("text_a", pa.string()), ("text_b", pa.string()),
                                     ("score", pa.float32()), ("scheme", pa.string()),
                                     ("group_id", pa.string())])


def test_valid_records_become_groups():
    assert qa_group({"id": "q", "question": "问?", "answers": ["甲。", ""]}) == Group(
        "q", ("甲。", ""))
    assert qa_group({"id": "q", "answers": ["甲。"]}) == Group("q", ("甲。",))
    assert doc_group({"id": "d", "text": "甲。乙。", "extra": 1}) == Group("d", ("甲。乙。",))


@pytest.mark.parametrize("to_group, record, reason", [
    (qa_group, {"answers": ["a"]}, "missing_field"),
    (qa_group, {"id": None, "answers": ["a"]}, "missing_field"),
    (qa_group, {"id": "q"}, "missing_field"),
    (qa_group, {"id": 1, "answers": ["a"]}, "wrong_type"),
    (qa_group, {"id": "q", "answers": {"a": 1}}, "wrong_type"),
    (qa_group, {"id": "q", "answers": ["a", None]}, "wrong_type"),
    (qa_group, {"id": "q", "question": ["?"], "answers": ["a"]}, "wrong_type"),
    (qa_group, {"id": " ", "answers": ["a"]}, "empty_id"),
    (qa_group, {"id": "q", "answers": []}, "empty_list"),
    (qa_group, {"id": "q", "answers": [" ", "\n"]}, "no_text"),
    (doc_group, {"id": "d"}, "missing_field"),
    (doc_group, {"id": "d", "text": ["a"]}, "wrong_type"),
    (doc_group, {"id": "d", "text": "  "}, "no_text"),
])
def test_invalid_records_are_rejected_with_a_reason(to_group, record, reason):
    with pytest.raises(Rejected) as caught:
        to_group(record)
    assert caught.value.reason == reason and caught.value.detail


def test_dead_letter_keeps_a_bounded_excerpt_and_unknown_reasons_fail():
    letter = dead_letter("f.jsonl", 3, "invalid_utf8", "bad", b"\xff" + b"a" * 5000, 5001)
    assert letter["record"].startswith("\\xff") and len(letter["record"]) == RECORD_EXCERPT_CHARS
    assert letter["source"] == "f.jsonl" and letter["line_no"] == 3
    assert letter["record_bytes"] == 5001 and letter["reason"] in REASONS
    with pytest.raises(KeyError):
        Rejected("no_such_reason", "x")


def test_json_size_counts_utf8_bytes():
    assert json_size({"a": "长"}) == len('{"a":"长"}'.encode())


def test_encodable_drops_lone_surrogates_from_texts_and_rejects_them_in_ids():
    assert encodable(Group("g", ("今\ud800天", "好"))) == (Group("g", ("今天", "好")), 1)
    assert encodable(Group("g", ("好",))) == (Group("g", ("好",)), 0)
    with pytest.raises(Rejected) as caught:
        encodable(Group("g\udfff", ("好",)))
    assert caught.value.reason == "invalid_utf8"
