"""Tokenizer: parity with transformers.BertTokenizer on every shared STS sentence, pair encoding,
bert4keras truncation, padding, spaces kept as [unused1], decode."""

import numpy as np
import pytest

from model.tokenizer import Tokenizer, truncated_lengths

VOCABS = ("roformer-sim-char", "bert-base-chinese")


def read_sts_pairs(shared_data, name="*"):
    pairs = []
    for path in sorted((shared_data / "sts").glob(f"{name}.valid.data")):
        for line in path.read_text(encoding="utf-8").splitlines():
            a, b, _ = line.split("\t")
            pairs.append((a, b))
    return pairs


@pytest.fixture(scope="module")
def sts_pairs(shared_data):
    return read_sts_pairs(shared_data)


@pytest.fixture(scope="module")
def char_vocab(shared_data):
    return shared_data / "vocab" / "roformer-sim-char" / "vocab.txt"


@pytest.mark.parametrize("vocab", VOCABS)
def test_equals_hf_bert_tokenizer_on_all_sts_sentences(shared_data, sts_pairs, vocab):
    transformers = pytest.importorskip("transformers")
    vocab_file = shared_data / "vocab" / vocab / "vocab.txt"
    ours = Tokenizer(vocab_file, do_lower_case=True)
    backend = transformers.BertTokenizer(str(vocab_file), do_lower_case=True).backend_tokenizer
    sentences = sorted({s for pair in sts_pairs for s in pair})
    expected = [e.ids for e in backend.encode_batch(sentences)]
    got = [ours.encode(s, maxlen=None)[0] for s in sentences]
    mismatches = [s for s, e, g in zip(sentences, expected, got, strict=True) if e != g]
    assert len(sentences) > 60000
    assert mismatches == []
    pair_expected = backend.encode_batch(sts_pairs[:2000])
    for (a, b), e in zip(sts_pairs[:2000], pair_expected, strict=True):
        assert ours.encode(a, b, maxlen=None) == (e.ids, e.type_ids)


def test_hand_written_edge_cases_equal_hf(char_vocab):
    transformers = pytest.importorskip("transformers")
    ours = Tokenizer(char_vocab)
    hf = transformers.BertTokenizer(str(char_vocab), do_lower_case=True)
    texts = [
        "今天天气不错 Hello WORLD iPhone12",
        "Café naïve résumé",
        "好[MASK]坏[mask]x[UNK]",
        "ab\x00cd\ufffde\u200bf",
        "a\u2028b\tc\u3000d",
        "x" * 101,
        "３．５元，ｈｅｌｌｏ！",
        "",
    ]
    for text in texts:
        assert ours.tokenize(text) == hf.tokenize(text), text


def test_cased_equals_hf_on_pawsx(shared_data):
    transformers = pytest.importorskip("transformers")
    vocab_file = shared_data / "vocab" / "bert-base-chinese" / "vocab.txt"
    ours = Tokenizer(vocab_file, do_lower_case=False)
    backend = transformers.BertTokenizer(str(vocab_file), do_lower_case=False).backend_tokenizer
    sentences = [s for pair in read_sts_pairs(shared_data, "PAWSX") for s in pair]
    expected = [e.ids for e in backend.encode_batch(sentences)]
    assert [ours.encode(s, maxlen=None)[0] for s in sentences] == expected


def test_special_ids_and_lookup(char_vocab):
    tok = Tokenizer(char_vocab)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 100, 101, 102, 103)
    assert tok.vocab_size == 12000
    assert tok.id_to_token(tok.token_to_id("天")) == "天"
    assert tok.token_to_id("no-such-token") == tok.unk_id


def test_pair_encoding_layout(char_vocab):
    tok = Tokenizer(char_vocab)
    ids, segments = tok.encode("你好", "再见")
    assert [tok.id_to_token(i) for i in ids] == ["[CLS]", "你", "好", "[SEP]", "再", "见", "[SEP]"]
    assert segments == [0, 0, 0, 0, 1, 1, 1]


def bert4keras_truncate(a, b, maxlen):
    """Independent reference: bert4keras truncate_sequences popping index -2."""
    first, second = ["[CLS]", *a, "[SEP]"], ["[CLS]", *b, "[SEP]"]
    while len(first) + len(second) > maxlen + 1:
        longest = first if len(first) >= len(second) else second
        longest.pop(-2)
    return first[1:-1], second[1:-1]


@pytest.mark.parametrize("len_a,len_b,maxlen", [(10, 3, 8), (3, 10, 8), (7, 7, 9), (7, 7, 10),
                                                (5, 6, 3), (40, 39, 64), (0, 9, 5), (2, 2, 64)])
def test_truncation_matches_bert4keras(char_vocab, len_a, len_b, maxlen):
    tok = Tokenizer(char_vocab)
    a, b = "甲" * len_a, "乙" * len_b
    ref_a, ref_b = bert4keras_truncate(list(a), list(b), maxlen)
    ids, segments = tok.encode(a, b, maxlen=maxlen)
    assert len(ids) <= maxlen
    assert segments.count(0) == len(ref_a) + 2 and segments.count(1) == len(ref_b) + 1
    assert truncated_lengths(len_a, len_b, maxlen - 3) == (len(ref_a), len(ref_b))


def test_single_truncation_and_bad_maxlen(char_vocab):
    tok = Tokenizer(char_vocab)
    ids, _ = tok.encode("一二三四五六", maxlen=5)
    assert [tok.id_to_token(i) for i in ids] == ["[CLS]", "一", "二", "三", "[SEP]"]
    with pytest.raises(ValueError, match="maxlen"):
        tok.encode("一", "二", maxlen=2)


def test_encode_batch_pads_to_longest(char_vocab):
    tok = Tokenizer(char_vocab)
    batch = tok.encode_batch(["你好吗", "好"], ["是的", "不是的呀啊"], maxlen=64)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    assert all(v.dtype == np.int64 and v.shape == (2, 9) for v in batch.values())
    assert batch["attention_mask"].sum(1).tolist() == [8, 9]
    assert batch["input_ids"][0, -1] == tok.pad_id and batch["token_type_ids"][0, -1] == 0
    with pytest.raises(ValueError, match="texts_b"):
        tok.encode_batch(["a"], ["b", "c"])


def test_space_token_keeps_length(char_vocab, sts_pairs):
    tok = Tokenizer(char_vocab, space_token="[unused1]")
    plain = Tokenizer(char_vocab)
    assert tok.tokenize("你 好\u3000吗") == ["你", "[unused1]", "好", "[unused1]", "吗"]
    spaced = [s for pair in sts_pairs for s in pair if " " in s and all(
        not c.isascii() or c == " " for c in s)]
    assert spaced, "the STS files contain Chinese sentences with spaces"
    for s in spaced[:500]:
        tokens = tok.tokenize(s)
        assert len(tokens) == len(s)
        assert [t for t in tokens if t != "[unused1]"] == plain.tokenize(s)
    with pytest.raises(ValueError, match="space_token"):
        Tokenizer(char_vocab, space_token="[nope]")


def test_decode(char_vocab, sts_pairs):
    tok = Tokenizer(char_vocab)
    assert tok.decode(tok.encode("我用iPhone 12拍照，很好！")[0]) == "我用iphone 12拍照，很好！"
    chinese = [a for a, _ in sts_pairs if all(not c.isascii() for c in a)][:300]
    for s in chinese:
        if tok.unk_id not in tok.text_ids(s):
            assert tok.decode(tok.encode(s, maxlen=None)[0]) == s
    spaced = Tokenizer(char_vocab, space_token="[unused1]")
    assert spaced.decode(spaced.encode("你 好")[0]) == "你 好"


def test_bad_vocab_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab_file"):
        Tokenizer(tmp_path / "missing.txt")
    (tmp_path / "v.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks special tokens \['\[CLS\]'"):
        Tokenizer(tmp_path / "v.txt")
