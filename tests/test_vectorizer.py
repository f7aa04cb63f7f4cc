import json

import numpy as np
import pytest

from textrnn import TextrnnError, Vectorizer
from textrnn.text import make_vectorizer


def test_standardize_lowercases_and_strips_keras_punctuation():
    v = Vectorizer(50).adapt(["x"])
    assert v.standardize("Hello, World! It's e-mail: A&B (x\\y) #1 [ok]") == [
        "hello", "world", "its", "email", "ab", "xy", "1", "ok"]


def test_vocabulary_counts_padding_and_oov_most_frequent_first_ties_descending():
    v = Vectorizer(max_tokens=6).adapt(["b a a b c", "d c e"])
    # counts: a2 b2 c2 d1 e1 -> ties broken by token, descending (Keras IndexLookup); 6 - 2 = 4 words kept
    assert v.vocabulary == ["", "[UNK]", "c", "b", "a", "e"]
    assert v.vocab_size == 6


def test_unknown_tokens_map_to_one_and_batches_pad_with_zero():
    v = Vectorizer(10).adapt(["the cat sat", "the dog"])
    ids = v.encode(["The cat flew", "", "dog"])
    the, cat, dog = (v.vocabulary.index(w) for w in ("the", "cat", "dog"))
    assert ids[0].tolist() == [the, cat, 1]
    assert ids[1].tolist() == []
    padded = v(["The cat flew", "dog"])
    assert padded.tolist() == [[the, cat, 1], [dog, 0, 0]]


def test_adapt_on_lesson_titles_and_roundtrip(tmp_path, ag_news_mini):
    titles = ag_news_mini.train.columns["title"][:2000]
    v = Vectorizer(20000).adapt(titles)
    # 2,000 titles hold far fewer distinct words than 20,000: the vocabulary is all of them plus the two specials
    distinct = {t for title in titles for t in v.standardize(title)}
    assert v.vocab_size == len(distinct) + 2
    path = tmp_path / "tokenizer.json"
    v.save(path)
    assert json.loads(path.read_text())["model"]["type"] == "WordLevel"
    loaded = Vectorizer.load(path)
    texts = ag_news_mini.test.texts("title+description")[:50]
    assert all(np.array_equal(a, b) for a, b in zip(v.encode(texts), loaded.encode(texts)))
    assert loaded.vocabulary == v.vocabulary


def test_errors_are_clear(tmp_path):
    with pytest.raises(TextrnnError, match="adapt"):
        Vectorizer(10).encode(["x"])
    with pytest.raises(TextrnnError, match="no tokens"):
        Vectorizer(10).adapt(["...", "!!"])
    with pytest.raises(TextrnnError, match="no tokenizer file"):
        Vectorizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TextrnnError, match="cannot read tokenizer"):
        Vectorizer.load(bad)


@pytest.mark.parametrize("name", ["ag_news", "sst2", "imdb", "bbc-news"])
def test_fast_encoding_matches_the_tokenizers_library(name, data_root):
    from textrnn import load_dataset

    folder = {"ag_news": data_root / "ag_news_mini", "bbc-news": None}.get(name, data_root / name)
    ds = load_dataset(name, folder)
    texts = ds.train.texts(ds.text)[:3000] + ["", "   ", "  Leading and trailing  ", "Café NAÏVE résumé!"]
    v = Vectorizer(5000).adapt(texts[:2000])
    assert [ids.tolist() for ids in v.encode(texts)] == v.encode_reference(texts)
    few = texts[-10:]  # fewer than 32 texts take the tokenizers path; the ids are the same
    assert [ids.tolist() for ids in v.encode(few)] == [ids.tolist() for ids in v.encode(texts)[-10:]]


@pytest.mark.parametrize("keep", ["head", "tail", "both"])
def test_flat_truncation_matches_row_by_row(keep):
    from textrnn.data.batching import TokenizedCorpus, truncate

    rows = [np.arange(n) + 10 * n for n in (0, 1, 3, 7, 12)]
    flat = TokenizedCorpus.from_flat(np.concatenate(rows), np.array([len(r) for r in rows]), 5, keep)
    expected = [truncate(r, 5, keep) for r in rows]
    got = [flat.ids[o : o + n] for o, n in zip(flat.offsets, flat.lengths)]
    assert [g.tolist() for g in got] == [e.tolist() for e in expected]


def tensorflow_or_skip():
    """Keras parity runs against TensorFlow itself: skipped where the `keras` extra is missing, except under CI
    (.ci/run installs it), where it fails."""
    import importlib.util
    import os

    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
        if os.environ.get("CI"):
            pytest.fail("TensorFlow is missing under CI: .ci/run installs textrnn[keras]")
        pytest.skip("TensorFlow is not installed (pip install -e '.[keras]')")


PARITY_DATA = {"sst2": 6920, "imdb": 1500, "ag_news": 6000}  # rows of each training file


def parity_task(name: str, rows: int, data_root) -> dict:
    from textrnn import load_dataset

    ds = load_dataset(name, data_root / ("ag_news_mini" if name == "ag_news" else name))
    texts = ds.train.texts(ds.text)[:rows]
    # what differs between Unicode and ASCII rules: spaces TensorFlow does not split on, capitals it keeps
    probes = ["2\xa012 a\x85b c\u2028d e\u3000f Tab\tVT\x0bFF\x0cCR\rLF\nend", "Ünïcode ÀB Élan", "\x1c x \x1fy"]
    special = [t for t in texts if any(c in t for c in "\xa0\x85\u2028\u3000") or any(ord(c) > 127 and c.isupper()
                                                                                      for c in t)]
    if name != "ag_news":
        assert special, f"{name} was expected to hold non-ASCII spaces or capitals"
    return {"max_tokens": 5000, "adapt": texts + probes, "encode": texts[:500] + special[:500] + probes}


@pytest.fixture(scope="module")
def keras_parity(data_root, tmp_path_factory):
    """{dataset: (task, Keras's answer)}: TextVectorization run once, in one process, on every dataset's task."""
    import subprocess
    import sys
    from pathlib import Path

    tensorflow_or_skip()
    folder = tmp_path_factory.mktemp("keras")
    tasks = {name: parity_task(name, rows, data_root) for name, rows in PARITY_DATA.items()}
    argv = []
    for name, task in tasks.items():
        (folder / f"{name}.json").write_text(json.dumps(task, ensure_ascii=False), encoding="utf-8")
        argv += [str(folder / f"{name}.json"), str(folder / f"{name}-keras.json")]
    script = Path(__file__).parent / "scripts" / "keras_vocabulary.py"
    run = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return {name: (task, json.loads((folder / f"{name}-keras.json").read_text(encoding="utf-8")))
            for name, task in tasks.items()}


@pytest.mark.parametrize("name", list(PARITY_DATA))
def test_ids_equal_tensorflow_textvectorization_on_non_ascii_text(name, keras_parity):
    task, keras = keras_parity[name]
    v = Vectorizer(5000).adapt(task["adapt"])
    assert v.vocabulary == keras["vocabulary"], next(
        (i, a, b) for i, (a, b) in enumerate(zip(v.vocabulary, keras["vocabulary"])) if a != b)
    assert [ids.tolist() for ids in v.encode(task["encode"])] == keras["ids"]
    assert v.encode_reference(task["encode"]) == keras["ids"]  # the tokenizer.json itself agrees too


def test_extend_adds_only_words_a_text_can_produce_once_each_after_the_own_words():
    v = Vectorizer(max_tokens=10).adapt(["the cat sat", "the dog"])
    own = v.vocabulary
    added = v.extend(["the", "mat", "don't", "Big", "two words", "rug", "mat", "café", "x", "zebra"], 4)
    # "the" is there already; "don't" and "Big" would be standardized into other tokens, "two words" into two
    assert added == ["mat", "rug", "café", "x"]
    assert v.vocabulary == own + added and v.vocab_size == len(own) + 4
    texts = ["the mat, the rug and the zebra"] * 40  # 40: the Arrow path; one text: the tokenizers library's
    ids = v.encode(texts)
    assert ids[0].tolist() == v.encode(texts[:1])[0].tolist() == [2, 6, 2, 7, 1, 2, 1]
    assert v.extend(["mat", "rug"], 10) == []
    with pytest.raises(TextrnnError, match="only the word tokenizer"):
        make_vectorizer("char", 50).adapt(["abc"]).extend(["x"], 1)
