"""Character and subword vectorizers: trained by the `tokenizers` library, saved as tokenizer.json beside the
model, loaded back to the same ids and predictions."""

import json

import numpy as np
import pytest
from tokenizers import Tokenizer

from textrnn import TextClassifier, load_dataset
from textrnn.text.vectorizer import TOKENIZERS, load_vectorizer, make_vectorizer


@pytest.fixture(scope="module")
def sst2(data_root):
    return load_dataset("sst2", data_root / "sst2")


@pytest.mark.parametrize("kind", ["char", "wordpiece", "bpe"])
def test_vectorizer_round_trips_through_tokenizer_json(sst2, tmp_path, kind):
    texts = sst2.train.texts()
    vectorizer = make_vectorizer(kind, 2000).adapt(texts)
    assert vectorizer.kind == kind
    vocab = vectorizer.tokenizer.get_vocab()
    assert vocab["[PAD]"] == 0 and vocab["[UNK]"] == 1
    assert vectorizer.vocab_size <= 2000
    ids, lengths = vectorizer.encode_flat(texts[:100])
    assert (ids >= 2).mean() > 0.97  # almost nothing falls out of a vocabulary learned on these texts
    vectorizer.save(tmp_path / "tokenizer.json")
    # the file is a plain `tokenizers` file: the library itself gives the same ids
    plain = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert [e.ids for e in plain.encode_batch(texts[:100], add_special_tokens=False)] == \
        [list(x) for x in np.split(ids, np.cumsum(lengths)[:-1])]
    again = load_vectorizer(tmp_path / "tokenizer.json", kind)
    assert np.array_equal(again.encode_flat(texts[:100])[0], ids)


def test_char_tokens_are_characters_and_subwords_split_rare_words(sst2):
    texts = sst2.train.texts()
    char = make_vectorizer("char", 500).adapt(texts)
    assert char.standardize("Hi  there!") == ["h", "i", " ", "t", "h", "e", "r", "e", "!"]
    assert 30 < char.vocab_size < 200
    wordpiece = make_vectorizer("wordpiece", 2000).adapt(texts)
    pieces = wordpiece.tokenizer.encode("unwatchably overlong", add_special_tokens=False).tokens
    assert len(pieces) > 2 and "[UNK]" not in pieces and any(p.startswith("##") for p in pieces)
    assert "wordpiece" in TOKENIZERS and "bpe" in TOKENIZERS


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_model_with_other_tokenizer_saves_and_loads(sst2, tmp_path, kind):
    texts, labels = sst2.train.texts()[:1500], sst2.train.labels[:1500]
    clf = TextClassifier(tokenizer=kind, max_tokens=3000, embedding_dim=16, hidden_size=16, epochs=1,
                         max_len=200, progress=False).fit(texts, labels)
    assert clf.model_.config.vocab_size == clf.vectorizer_.vocab_size  # a learned vocabulary gets its own size
    path = clf.save_pretrained(tmp_path / "model")
    assert json.loads((path / "config.json").read_text())["tokenizer"]["type"] == kind
    loaded = TextClassifier.from_pretrained(path)
    dev = sst2.validation.texts()[:200]
    assert np.array_equal(loaded.predict_proba(dev), clf.predict_proba(dev))


def test_wordpiece_model_learns_sst2(sst2):
    clf = TextClassifier(tokenizer="wordpiece", max_tokens=8000, embedding_dim=32, hidden_size=32, epochs=3,
                         progress=False, seed=0)
    clf.fit(sst2.train.texts(), sst2.train.labels)
    assert clf.score(sst2.validation.texts(), sst2.validation.labels) > 0.70  # chance 0.51; measured 0.78-0.79
