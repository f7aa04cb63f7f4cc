"""Word-level text vectorization with the semantics of Keras's `TextVectorization`.

Standardize (lowercase, strip ASCII punctuation), split on whitespace, map tokens to integers with
index 0 for padding and index 1 for out-of-vocabulary tokens. `max_tokens` counts both of those, and
the rest of the vocabulary is the most frequent tokens of the texts it was adapted on, most frequent
first, ties broken by the token in descending order (as Keras's `IndexLookup` does).

The work is done by Hugging Face `tokenizers` (Rust), so encoding a batch runs without a Python loop
per token, and the vectorizer is saved as a standard `tokenizer.json` that the `tokenizers` library
itself can load.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

from .errors import TextrnnError

PAD_TOKEN = "[PAD]"  # Keras calls it "" — standardization can never produce either, so they never collide
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1

# Keras's DEFAULT_STRIP_REGEX, character for character.
KERAS_PUNCTUATION = r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']'


def _standardizer() -> normalizers.Normalizer:
    return normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex(KERAS_PUNCTUATION), "")])


class Vectorizer:
    """Turns texts into lists of token ids. Call `adapt` once, then `encode`.

    Parameters
    ----------
    max_tokens:
        Size of the vocabulary *including* padding (0) and out-of-vocabulary (1), as in Keras.
    """

    def __init__(self, max_tokens: int = 20000):
        if max_tokens < 3:
            raise TextrnnError(f"max_tokens must be at least 3 (padding, out-of-vocabulary and one word), got {max_tokens}")
        self.max_tokens = max_tokens
        self._tokenizer: Tokenizer | None = None

    # -- building -----------------------------------------------------------------------------------------
    def adapt(self, texts: Iterable[str]) -> "Vectorizer":
        """Build the vocabulary from `texts`: the `max_tokens - 2` most frequent tokens."""
        probe = Tokenizer(WordLevel({PAD_TOKEN: PAD_ID, OOV_TOKEN: OOV_ID}, unk_token=OOV_TOKEN))
        probe.normalizer = _standardizer()
        probe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        counts: Counter[str] = Counter()
        normalize = probe.normalizer.normalize_str
        split = probe.pre_tokenizer.pre_tokenize_str
        for text in texts:
            counts.update(token for token, _ in split(normalize(text)))
        if not counts:
            raise TextrnnError("cannot build a vocabulary: the texts to adapt on contain no tokens")
        # Keras: by count, then by token, both descending.
        ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        words = [token for token, _ in ranked[: self.max_tokens - 2]]
        self._build(words)
        return self

    def _build(self, words: Sequence[str]) -> None:
        vocab = {PAD_TOKEN: PAD_ID, OOV_TOKEN: OOV_ID}
        vocab.update({word: i + 2 for i, word in enumerate(words)})
        tokenizer = Tokenizer(WordLevel(vocab, unk_token=OOV_TOKEN))
        tokenizer.normalizer = _standardizer()
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        self._tokenizer = tokenizer

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

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, unpadded (int32 arrays, possibly empty)."""
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int32) for e in encodings]

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
        except Exception as exc:  # the Rust side raises plain Exception on a bad file
            raise TextrnnError(f"cannot read tokenizer file {path}: {exc}") from None
        vectorizer = cls(max_tokens=max_tokens or tokenizer.get_vocab_size())
        vectorizer._tokenizer = tokenizer
        return vectorizer
