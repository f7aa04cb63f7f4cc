"""The shape of a network, as config.json records it: everything needed to rebuild it, nothing about training."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import TextrnnError

CELLS = ("rnn", "lstm", "gru")
CELL_NAMES = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
# How the encoder's per-step outputs become one vector per text: the final state (the lesson's), the max or
# mean over real positions, or all three side by side ("concat", ULMFiT's concat pooling).
POOLINGS = ("last", "max", "mean", "concat")
MAX_NGRAMS = 3


def check_shape(config) -> None:
    """The checks every network's config shares: a known cell, and sizes of at least 1."""
    if config.cell not in CELLS:
        raise TextrnnError(f"unknown cell {config.cell!r}: choose one of {', '.join(CELLS)}")
    for name in ("vocab_size", "embedding_dim", "hidden_size", "layers"):
        if getattr(config, name) < 1:
            raise TextrnnError(f"{name} must be at least 1, got {getattr(config, name)}")


@dataclass
class ModelConfig:
    vocab_size: int  # rows of the embedding table (the lesson: max_tokens, padding and OOV included)
    num_classes: int
    cell: str = "lstm"
    embedding_dim: int = 128
    hidden_size: int = 64
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    mask: bool = True
    pooling: str = "last"
    # in training, drop whole words for a batch: every occurrence of a dropped word reads zeros (AWD-LSTM's
    # embedding dropout), the words kept are scaled up to make up for it
    embedding_dropout: float = 0.0
    # in training, each token occurrence reads zeros on its own (word dropout), and each text's embedded tokens
    # lose the same features at every step (variational or locked dropout on the recurrence's input)
    token_dropout: float = 0.0
    input_dropout: float = 0.0
    # a bag of the text's word n-grams beside the recurrence, joined to the head (fastText's model trained
    # together with the RNN): 0 off; n the mean vector of the text's words and its 2..n-grams, the n-grams
    # hashed into `ngram_buckets` rows added to the embedding table after the words' rows
    ngrams: int = 0
    ngram_buckets: int = 0
    # in training, each n-gram occurrence leaves the bag with this probability (the mean is over those kept)
    ngram_dropout: float = 0.0

    def __post_init__(self) -> None:
        check_shape(self)
        if self.num_classes < 2:
            raise TextrnnError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        for name in ("dropout", "embedding_dropout", "token_dropout", "input_dropout", "ngram_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise TextrnnError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.ngrams <= MAX_NGRAMS:
            raise TextrnnError(f"ngrams must be from 0 (off) to {MAX_NGRAMS}, got {self.ngrams}")
        if self.ngram_buckets < 0 or (self.ngrams >= 2) != (self.ngram_buckets > 0):
            raise TextrnnError(f"ngrams of 2 or more need ngram_buckets (rows to hash them into) and fewer need "
                               f"none, got ngrams={self.ngrams}, ngram_buckets={self.ngram_buckets}")
        if self.pooling not in POOLINGS:
            raise TextrnnError(f"unknown pooling {self.pooling!r}: choose one of {', '.join(POOLINGS)}")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """Width of the encoder's output at one step (both directions side by side)."""
        return self.directions * self.hidden_size

    @property
    def table_rows(self) -> int:
        """Rows of the embedding table: the vocabulary's, then the hashed n-grams' (when there are any)."""
        return self.vocab_size + self.ngram_buckets

    def to_dict(self) -> dict:
        return asdict(self)
