"""Text vectorization: the lesson's word-level vectorizer (the default), and character and subword ones.

Every vectorizer is a Hugging Face `tokenizers` tokenizer saved as a standard `tokenizer.json`, with id 0 for
padding ("[PAD]") and id 1 for out-of-vocabulary ("[UNK]"); `TOKENIZERS` names the kinds and
`make_vectorizer`/`load_vectorizer` build and read them.

Word level (`Vectorizer`) has the semantics of Keras's `TextVectorization`:

Standardize (lowercase A-Z, strip ASCII punctuation), split on ASCII whitespace (space, \t, \n, \v, \f, \r),
map tokens to integers with
index 0 for padding and index 1 for out-of-vocabulary tokens. `max_tokens` counts both of those, and
the rest of the vocabulary is the most frequent tokens of the texts it was adapted on, most frequent
first, ties broken by the token in descending order (as Keras's `IndexLookup` does).

"Lowercase" and "whitespace" are TensorFlow's: `tf.strings.lower` without an encoding lowercases ASCII letters
only ("Ünïcode" stays so, "ÀB" becomes "Àb") and `tf.strings.split` splits on ASCII whitespace only (SST-2's
"2\xa012" is one token); textrnn matches both, checked against TensorFlow itself where it is installed.
Tokenizer files written before textrnn 0.3 lowercase and split the Unicode way, and still do (`unicode_rules`).

The vectorizer is a Hugging Face `tokenizers` WordLevel tokenizer, saved as a standard `tokenizer.json` that
the `tokenizers` library itself loads and that defines what the ids are. Batches are encoded with the same
steps as Arrow compute kernels (lowercase, strip, split, hash lookup), which produce the same ids three to four
times faster and hand back one flat array instead of an object per text; tests/test_vectorizer.py checks the
two agree on every shared dataset.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

from ..errors import TextrnnError

TOKENIZERS = ("word", "char", "wordpiece", "bpe")
TOKENIZER_MODELS = {"word": "WordLevel", "char": "WordLevel", "wordpiece": "WordPiece", "bpe": "BPE"}  # tokenizers' own
PAD_TOKEN = "[PAD]"  # Keras calls it "" — standardization can never produce either, so they never collide
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1
# The lesson's TextVectorization(max_tokens=20000): rows of the embedding table, padding and OOV included.
DEFAULT_MAX_TOKENS = 20000

# Keras's DEFAULT_STRIP_REGEX, character for character.
KERAS_PUNCTUATION = r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']'
# What TensorFlow's whitespace split splits on (ASCII only).
ASCII_WHITESPACE = "[ \t\n\x0b\x0c\r]+"


def _standardizer() -> normalizers.Normalizer:
    ascii_lower = [normalizers.Replace(c, c.lower()) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    return normalizers.Sequence([*ascii_lower, normalizers.Replace(Regex(KERAS_PUNCTUATION), "")])


def arrow_tokens(texts: Sequence[str], unicode_rules: bool = False):
    """Standardize and split `texts` with Arrow kernels: (all tokens as one Arrow array, tokens per text).
    unicode_rules: lowercase and split the Unicode way, as tokenizer files written before textrnn 0.3 say."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(list(texts), type=pa.large_string())
    text = pc.utf8_lower(text) if unicode_rules else pc.ascii_lower(text)
    text = pc.replace_substring_regex(text, KERAS_PUNCTUATION, "")
    pieces = pc.utf8_split_whitespace(text) if unicode_rules else pc.ascii_split_whitespace(text)
    tokens = pieces.flatten()
    # Arrow keeps an empty piece before leading and after trailing whitespace; whitespace splitting does not
    real = pc.not_equal(pc.utf8_length(tokens), 0)
    owner = pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False)
    lengths = np.bincount(owner[real.to_numpy(zero_copy_only=False)], minlength=len(text)).astype(np.int64)
    return pc.filter(tokens, real), lengths


class Vectorizer:
    """Word-level vectorizer: turns texts into lists of token ids. Call `adapt` once, then `encode`.

    Parameters
    ----------
    max_tokens:
        Size of the vocabulary *including* padding (0) and out-of-vocabulary (1), as in Keras.
    """

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS):
        if max_tokens < 3:
            raise TextrnnError(f"max_tokens must be at least 3 (padding, out-of-vocabulary and one word), "
                               f"got {max_tokens}")
        self.max_tokens = max_tokens
        self._tokenizer: Tokenizer | None = None
        self.unicode_rules = False  # True for tokenizer files that lowercase and split the Unicode way (before 0.3)

    kind = "word"

    # -- building -----------------------------------------------------------------------------------------
    def adapt(self, texts: Iterable[str]) -> "Vectorizer":
        """Build the vocabulary from `texts`: the `max_tokens - 2` most frequent tokens."""
        import pyarrow.compute as pc

        tokens, _ = arrow_tokens(list(texts))
        counts = pc.value_counts(tokens)
        if len(counts) == 0:
            raise TextrnnError("cannot build a vocabulary: the texts to adapt on contain no tokens")
        pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())
        # Keras: by count, then by token, both descending.
        ranked = sorted(pairs, key=lambda kv: (kv[1], kv[0]), reverse=True)
        self._build([token for token, _ in ranked[: self.max_tokens - 2]])
        return self

    def _build(self, words: Sequence[str]) -> None:
        vocab = {PAD_TOKEN: PAD_ID, OOV_TOKEN: OOV_ID}
        vocab.update({word: i + 2 for i, word in enumerate(words)})
        tokenizer = Tokenizer(WordLevel(vocab, unk_token=OOV_TOKEN))
        tokenizer.normalizer = _standardizer()
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(ASCII_WHITESPACE), behavior="removed")
        self._tokenizer = tokenizer
        self._vocab_array = None

    def extend(self, words: Sequence[str], limit: int) -> list[str]:
        """Give ids after the vocabulary's own to up to `limit` of `words`, in their order, that it lacks and that a
        text can produce (standardization keeps each as one token, unchanged); the words added. Pretrained
        vectors' words join this way, so that a word no training text has still gets a row of its own."""
        have = set(self.tokenizer.get_vocab())
        tokens, lengths = arrow_tokens(words, self.unicode_rules)
        first = (np.cumsum(lengths) - lengths)[lengths == 1]
        single = np.asarray(words, dtype=object)[lengths == 1]
        produced = tokens.take(first).to_pylist()  # each one-token word's token
        added = []
        for word, token in zip(single, produced):
            if len(added) == limit:
                break
            if word == token and word not in have:
                added.append(word)
                have.add(word)
        if added:
            self._build([*self.vocabulary[2:], *added])
        return added

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            raise TextrnnError("the vectorizer has no vocabulary yet: call adapt() first")
        return self._tokenizer

    @property
    def vocabulary(self) -> list[str]:
        """The vocabulary in id order, written the Keras way: '' for padding, '[UNK]' for out-of-vocabulary."""
        by_id = sorted(self.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        return ["" if token == PAD_TOKEN else token for token, _ in by_id]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    # -- using ----------------------------------------------------------------------------------------------
    def standardize(self, text: str) -> list[str]:
        """The tokens of one text after standardization and splitting (for inspection and tests)."""
        tok = self.tokenizer
        return [t for t, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text))]

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All token ids of all texts in one int64 array, and each text's number of tokens."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if len(texts) < 32:
            # a few texts (serving one request): the Rust tokenizer's fixed cost is lower than Arrow's
            encoded = self.encode_reference(texts)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            return np.fromiter((i for ids in encoded for i in ids), dtype=np.int64, count=int(lengths.sum())), lengths
        if getattr(self, "_vocab_array", None) is None:
            # ids are positions in this array; "[PAD]" and "[UNK]" can never come out of standardization
            by_id = sorted(self.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
            self._vocab_array = pa.array([token for token, _ in by_id], type=pa.large_string())
        tokens, lengths = arrow_tokens(texts, self.unicode_rules)
        ids = pc.fill_null(pc.index_in(tokens, value_set=self._vocab_array), OOV_ID)
        return ids.to_numpy(zero_copy_only=False).astype(np.int64), lengths

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, unpadded (arrays, possibly empty)."""
        ids, lengths = self.encode_flat(texts)
        return np.split(ids, np.cumsum(lengths)[:-1]) if len(lengths) else []

    def encode_reference(self, texts: Sequence[str]) -> list[list[int]]:
        """The same ids from the `tokenizers` library itself: the definition `encode` is checked against."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Keras-style call: a (batch, longest) int64 array padded with 0 at the end."""
        ids = self.encode(texts)
        out = np.zeros((len(ids), max((len(x) for x in ids), default=0)), dtype=np.int64)
        for row, seq in zip(out, ids):
            row[: len(seq)] = seq
        return out

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        self.tokenizer.save(str(path))

    @classmethod
    def load(cls, path: str | Path, max_tokens: int | None = None) -> "Vectorizer":
        path = Path(path)
        if not path.is_file():
            raise TextrnnError(f"no tokenizer file at {path}")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the Rust side raises Exception on a bad file, and a PanicException (a
            # BaseException) on some malformed ones
            raise TextrnnError(f"cannot read tokenizer file {path}: {' '.join(str(exc).split())[:300]}") from None
        vocab = tokenizer.get_vocab()
        if vocab.get(PAD_TOKEN) != PAD_ID or vocab.get(OOV_TOKEN) != OOV_ID:
            raise TextrnnError(f"{path} is not a textrnn tokenizer: {PAD_TOKEN} must be id {PAD_ID} and {OOV_TOKEN} "
                               f"id {OOV_ID}")
        vectorizer = cls(max_tokens=max_tokens or tokenizer.get_vocab_size())
        vectorizer._tokenizer = tokenizer
        # the file says how it splits; the Arrow path must split the same way
        vectorizer.unicode_rules = type(tokenizer.pre_tokenizer).__name__ == "WhitespaceSplit"
        return vectorizer


class _TrainedVectorizer(Vectorizer):
    """A vectorizer whose vocabulary a `tokenizers` trainer learns; encoding runs in the library's Rust code."""

    def _empty_tokenizer(self) -> Tokenizer:
        raise NotImplementedError

    def _trainer(self):
        raise NotImplementedError

    def adapt(self, texts: Iterable[str]) -> "Vectorizer":
        tokenizer = self._empty_tokenizer()
        tokenizer.train_from_iterator(list(texts), trainer=self._trainer())
        vocab = tokenizer.get_vocab()
        if vocab.get(PAD_TOKEN) != PAD_ID or vocab.get(OOV_TOKEN) != OOV_ID or len(vocab) <= 2:
            raise TextrnnError("cannot build a vocabulary: the texts to adapt on contain no tokens")
        self._tokenizer = tokenizer
        return self

    def extend(self, words: Sequence[str], limit: int) -> list[str]:
        raise TextrnnError(f"only the word tokenizer's vocabulary takes pretrained vectors' words, not {self.kind!r}'s")

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encoded = self.encode_reference(texts)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        ids = np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int64, count=int(lengths.sum()))
        return ids, lengths

    @property
    def vocabulary(self) -> list[str]:
        return [token for token, _ in sorted(self.tokenizer.get_vocab().items(), key=lambda kv: kv[1])]


class CharVectorizer(_TrainedVectorizer):
    """Character level: lowercased, runs of whitespace made one space, punctuation kept; one id per character,
    the `max_tokens - 2` most frequent characters of the adapt texts in the vocabulary."""

    kind = "char"

    def _empty_tokenizer(self) -> Tokenizer:
        tokenizer = Tokenizer(WordLevel(unk_token=OOV_TOKEN))
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                                     normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        return tokenizer

    def _trainer(self):
        from tokenizers.trainers import WordLevelTrainer

        return WordLevelTrainer(vocab_size=self.max_tokens, special_tokens=[PAD_TOKEN, OOV_TOKEN],
                                show_progress=False)


class SubwordVectorizer(_TrainedVectorizer):
    """Subword units learned from the adapt texts: WordPiece (BERT's) or byte-pair encoding, `max_tokens`
    in all. Lowercased, accents stripped, split on whitespace and punctuation first (BERT's normalizer and
    pre-tokenizer); a word is cut into the longest pieces in the vocabulary, so rare words stay readable."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, algorithm: str = "wordpiece"):
        super().__init__(max_tokens)
        if algorithm not in ("wordpiece", "bpe"):
            raise TextrnnError(f"unknown subword algorithm {algorithm!r}: wordpiece or bpe")
        self.kind = algorithm

    def _empty_tokenizer(self) -> Tokenizer:
        from tokenizers.models import BPE, WordPiece

        model = WordPiece(unk_token=OOV_TOKEN) if self.kind == "wordpiece" else BPE(unk_token=OOV_TOKEN)
        tokenizer = Tokenizer(model)
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return tokenizer

    def _trainer(self):
        from tokenizers.trainers import BpeTrainer, WordPieceTrainer

        trainer = WordPieceTrainer if self.kind == "wordpiece" else BpeTrainer
        return trainer(vocab_size=self.max_tokens, special_tokens=[PAD_TOKEN, OOV_TOKEN], show_progress=False)


def make_vectorizer(kind: str = "word", max_tokens: int = DEFAULT_MAX_TOKENS) -> Vectorizer:
    """An untrained vectorizer of `kind` (one of TOKENIZERS)."""
    if kind == "word":
        return Vectorizer(max_tokens)
    if kind == "char":
        return CharVectorizer(max_tokens)
    if kind in ("wordpiece", "bpe"):
        return SubwordVectorizer(max_tokens, kind)
    raise TextrnnError(f"unknown tokenizer {kind!r}: choose one of {', '.join(TOKENIZERS)}")


def load_vectorizer(path: str | Path, kind: str = "word", max_tokens: int | None = None) -> Vectorizer:
    """Read a tokenizer.json written by a vectorizer of `kind`."""
    loaded = Vectorizer.load(path, max_tokens)  # reads and checks the file
    model = type(loaded.tokenizer.model).__name__
    if model != TOKENIZER_MODELS.get(kind, model):
        raise TextrnnError(f"{path} holds a {model} tokenizer, but the model was trained with the {kind!r} "
                           f"tokenizer ({TOKENIZER_MODELS[kind]})")
    vectorizer = make_vectorizer(kind, loaded.max_tokens)
    vectorizer._tokenizer = loaded._tokenizer
    return vectorizer
