"""Tokenizers and language-model windows: round trips, <unk> for unseen symbols, padding, stored vocabularies."""

import json

import pytest
import torch

from archlab.data.text import UNK_CHAR, CharTokenizer, WordTokenizer, split_words, windows
from archlab.errors import ConfigError, DataError

TRAIN = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer"
VAL = "Zounds! 42 ways to be."  # 'Z', '4', '2', '!' and 'y' never occur in TRAIN


def test_char_round_trip_on_training_characters():
    tokenizer = CharTokenizer.fit(TRAIN)
    ids = tokenizer.encode(TRAIN)
    assert ids.dtype == torch.long and ids.shape == (len(TRAIN),)
    assert tokenizer.decode(ids) == TRAIN
    assert list(tokenizer.chars) == sorted(set(TRAIN))
    assert tokenizer.vocab_size == len(set(TRAIN)) + 1 and int(ids.min()) >= 1


def test_char_vocabulary_comes_from_train_only_and_unseen_is_unk():
    tokenizer = CharTokenizer.fit(TRAIN)
    ids = tokenizer.encode(VAL + "\u00e9\U0001f600")  # also a non-ASCII and a non-BMP character
    unseen = {i for i, c in enumerate(VAL + "\u00e9\U0001f600") if c not in TRAIN}
    assert {i for i, v in enumerate(ids.tolist()) if v == tokenizer.unk_id} == unseen
    assert tokenizer.decode(tokenizer.encode("Zo")) == UNK_CHAR + "o"


def test_char_tokenizer_stores_as_plain_json():
    tokenizer = CharTokenizer.fit(TRAIN)
    stored = json.loads(json.dumps(tokenizer.to_dict()))
    assert CharTokenizer.from_dict(stored) == tokenizer
    assert CharTokenizer.from_dict(stored).encode(VAL).tolist() == tokenizer.encode(VAL).tolist()
    with pytest.raises(DataError, match="char tokenizer"):
        CharTokenizer.from_dict({"kind": "word", "words": []})
    with pytest.raises(DataError, match="ids must lie"):
        tokenizer.decode([tokenizer.vocab_size])


def test_empty_char_vocabulary_maps_everything_to_unk():
    assert CharTokenizer.fit("").encode("ab").tolist() == [0, 0]


def test_word_splitter_keeps_inner_apostrophes_and_splits_punctuation():
    assert split_words("Don't stop, O'Brien!  Now...") == ["don't", "stop", ",", "o'brien", "!", "now", ".", ".", "."]
    assert split_words("Hello World", lowercase=False) == ["Hello", "World"]


def test_word_vocabulary_order_min_count_and_max_size():
    texts = ["b a c a", "c b a d", "e"]  # a:3, b:2, c:2, d:1, e:1
    tokenizer = WordTokenizer.fit(texts, min_count=2)
    assert tokenizer.words == ("<pad>", "<unk>", "a", "b", "c")  # by count, ties alphabetical
    assert WordTokenizer.fit(texts, min_count=1).words[2:] == ("a", "b", "c", "d", "e")
    assert WordTokenizer.fit(texts, max_size=4, min_count=1).words == ("<pad>", "<unk>", "a", "b")
    with pytest.raises(ConfigError):
        WordTokenizer.fit(texts, max_size=1)


def test_word_only_in_validation_is_unk_and_case_is_folded():
    tokenizer = WordTokenizer.fit([TRAIN], min_count=1)
    ids = tokenizer.encode("TO BE zounds")
    assert ids.tolist() == [tokenizer.words.index("to"), tokenizer.words.index("be"), tokenizer.unk_id]
    assert tokenizer.decode(ids) == "to be <unk>"
    assert tokenizer.encode(TRAIN, max_length=3).tolist() == tokenizer.encode(TRAIN).tolist()[:3]


def test_encode_batch_pads_with_zero_and_reports_lengths_in_input_order():
    tokenizer = WordTokenizer.fit([TRAIN], min_count=1)
    ids, lengths = tokenizer.encode_batch(["to be", "", "to be or not to be", "the"], max_length=4)
    assert ids.shape == (4, 4) and ids.dtype == torch.long and lengths.tolist() == [2, 0, 4, 1]
    for row, length in zip(ids, lengths):
        assert (row[length:] == tokenizer.pad_id).all() and (row[:length] != tokenizer.pad_id).all()
    assert ids[2].tolist() == tokenizer.encode("to be or not").tolist()
    assert tokenizer.decode(ids[0]) == "to be"
    empty_ids, empty_lengths = tokenizer.encode_batch(["", ""])
    assert empty_ids.shape == (2, 1) and empty_lengths.tolist() == [0, 0]


def test_word_tokenizer_stores_as_plain_json():
    tokenizer = WordTokenizer.fit([TRAIN, VAL], min_count=1, lowercase=False)
    restored = WordTokenizer.from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert restored == tokenizer and restored.lowercase is False
    assert restored.encode(VAL).tolist() == tokenizer.encode(VAL).tolist()
    assert restored != WordTokenizer.fit([TRAIN], min_count=1)
    with pytest.raises(DataError):
        WordTokenizer.from_dict({"kind": "char", "chars": []})


def test_windows_are_next_token_pairs_drawn_reproducibly():
    corpus = torch.arange(50)
    inputs, targets = windows(corpus, 8, 200, torch.Generator().manual_seed(3))
    assert inputs.shape == targets.shape == (200, 8)
    assert torch.equal(targets, inputs + 1)  # in arange(50), the next token is the id plus one
    assert torch.equal(inputs[:, 1:], inputs[:, :-1] + 1)  # contiguous windows
    assert int(inputs[:, 0].min()) == 0 and int(targets[:, -1].max()) == 49  # both ends are reachable
    again, _ = windows(corpus, 8, 200, torch.Generator().manual_seed(3))
    assert torch.equal(inputs, again)


def test_windows_refuse_a_corpus_too_short():
    assert windows(torch.arange(9), 8, 2)[0].shape == (2, 8)
    with pytest.raises(ConfigError, match="too few"):
        windows(torch.arange(8), 8, 2)
    with pytest.raises(ConfigError):
        windows(torch.arange(20).reshape(4, 5), 2, 2)
