"""The recurrent classifier in four named stages: embed -> encode -> pool -> head.

`RNNEncoder` (encoder.py) embeds the token ids and runs the recurrence, masking padding exactly; `pool` turns
its output into one vector per text; `head` is a linear layer to the class logits. Attributions over the
embeddings (`forward_embedded`), export and other heads reuse the same encoder module rather than a copy.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import TextrnnError
from .config import ModelConfig
from .encoder import Encoded, RNNEncoder


def pool(encoded: Encoded, how: str) -> torch.Tensor:
    """One vector per text from the encoder's output: its final state, the max or the mean of its states over
    the real positions, or [final, max, mean] side by side. Padding never enters (empty texts pool to 0)."""
    if how == "last":
        return encoded.final
    steps, lengths = encoded.steps, encoded.lengths
    real = (torch.arange(steps.shape[1], device=steps.device)[None, :] < lengths[:, None])[:, :, None]
    pooled = []
    if how in ("max", "concat"):
        largest = steps.masked_fill(~real, float("-inf")).amax(1) if steps.shape[1] else encoded.final
        pooled.append(torch.where(lengths[:, None] > 0, largest, torch.zeros_like(largest)))
    if how in ("mean", "concat"):
        pooled.append((steps * real).sum(1) / lengths.clamp(min=1)[:, None].to(steps.dtype))
    return torch.cat([encoded.final, *pooled], dim=1) if how == "concat" else pooled[0]


# the multiplier of the n-gram hash (a prime, so that the order of the words changes the bucket); every product
# stays far inside int64 for buckets below 2**31
NGRAM_HASH_PRIME = 1_000_003


def ngram_rows(tokens: torch.Tensor, lengths: torch.Tensor, config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The embedding rows of each text's bag of n-grams and which of them are real: its words' own rows, then for
    each order k = 2..ngrams the row its k-gram hashes to (after the vocabulary's rows). (batch, n) both; an
    n-gram that reaches into the padding is not real, so padding never enters the bag."""
    positions = torch.arange(tokens.shape[1], device=tokens.device)[None, :]
    rows, real = [tokens], [positions < lengths[:, None]]
    for k in range(2, config.ngrams + 1):
        # the k-grams start at positions 0 .. width-k: slices that end k-1-j before the end (negative ends, so
        # that an exported graph keeps the width as its input's)
        def starting(j: int) -> torch.Tensor:
            return tokens[:, j : j - (k - 1) or None]

        hashed = starting(0)
        for j in range(1, k):
            hashed = (hashed * NGRAM_HASH_PRIME + starting(j)) % config.ngram_buckets
        rows.append(hashed + config.vocab_size)
        real.append(positions[:, : -(k - 1)] + (k - 1) < lengths[:, None])
    return torch.cat(rows, 1), torch.cat(real, 1)


class RNNClassifier(nn.Module):
    architecture = "RNNClassifier"  # the name config.json records, to rebuild the right network

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # Build every layer first and initialise after, in this order: a seed then gives the same weights as
        # it always has (runs stay comparable with earlier ones).
        self.encoder = RNNEncoder(config, initialise=False)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.pooled_size, config.num_classes)
        self.encoder.reset_parameters()
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
        """The name and shape of every weight the network for `config` holds, computed without building it, so
        that a model file can be checked against its config before anything is allocated."""
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[config.cell] * config.hidden_size
        h = config.hidden_size
        shapes = {"encoder.embedding.weight": (config.table_rows, config.embedding_dim)}
        for layer in range(config.layers):
            width = config.embedding_dim if layer == 0 else config.state_size
            cell = {"weight_ih": (gates, width), "weight_hh": (gates, h), "bias_ih": (gates,), "bias_hh": (gates,)}
            if config.bidirectional:
                for direction in ("forward_rnn", "backward_rnn"):
                    shapes.update({f"encoder.rnn.{layer}.{direction}.{k}_l0": v for k, v in cell.items()})
            else:
                shapes.update({f"encoder.rnn.{k}_l{layer}": v for k, v in cell.items()})
        shapes.update({"head.weight": (config.num_classes, RNNClassifier.features(config)),
                       "head.bias": (config.num_classes,)})
        return shapes

    @property
    def embedding(self) -> nn.Embedding:
        return self.encoder.embedding

    @staticmethod
    def features(config: ModelConfig) -> int:
        """Width of what the head reads: the pooled states, then the bag of n-grams' mean vector (if any)."""
        pooled = config.state_size * (3 if config.pooling == "concat" else 1)
        return pooled + (config.embedding_dim if config.ngrams else 0)

    @property
    def pooled_size(self) -> int:
        return self.features(self.config)

    def bag_of_ngrams(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """Each text's mean n-gram vector, (batch, embedding_dim), zeros for an empty text; None without n-grams.
        It reads the embedding table directly, without the recurrence's dropouts (fastText has none)."""
        if not self.config.ngrams:
            return None
        if not self.config.mask:  # every row as long as the batch (the width as the input's, for a traced graph)
            lengths = torch.ones_like(tokens).sum(1)
        rows, real = ngram_rows(tokens, lengths.to(tokens.device), self.config)
        if self.training and self.config.ngram_dropout > 0:
            real = real & (torch.rand(real.shape, device=real.device) >= self.config.ngram_dropout)
        vectors = self.encoder.embedding(rows) * real[:, :, None]
        return vectors.sum(1) / real.sum(1).clamp(min=1)[:, None].to(vectors.dtype)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.encoder.embed(tokens), lengths, self.bag_of_ngrams(tokens, lengths))

    def forward_embedded(self, x: torch.Tensor, lengths: torch.Tensor, bag: torch.Tensor | None = None
                         ) -> torch.Tensor:
        """Logits from embedded tokens (batch, width, embedding_dim): what gradient attributions differentiate.
        A model with n-grams also takes their bag (`bag_of_ngrams` of the same tokens), which stays fixed."""
        encoded = self.encoder.encode(x, lengths, steps=self.config.pooling != "last")
        return self.head(self.dropout(self.head_input(pool(encoded, self.config.pooling), bag)))

    def head_input(self, pooled: torch.Tensor, bag: torch.Tensor | None) -> torch.Tensor:
        """What the head reads: the pooled states, then the bag of n-grams' mean vector when the model has one."""
        if not self.config.ngrams:
            return pooled
        if bag is None:
            raise TextrnnError("this classifier reads a bag of n-grams too: pass bag_of_ngrams(tokens, lengths)")
        return torch.cat([pooled, bag.to(pooled.dtype)], dim=1)
