"""The recurrent classifier in four named stages: embed -> encode -> pool -> head.

`RNNEncoder` (encoder.py) embeds the token ids and runs the recurrence, masking padding exactly; `pool` turns
its output into one vector per text; `head` is a linear layer to the class logits. Attributions over the
embeddings (`forward_embedded`), export and other heads reuse the same encoder module rather than a copy.
"""

from __future__ import annotations

import torch
from torch import nn

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
        shapes = {"encoder.embedding.weight": (config.vocab_size, config.embedding_dim)}
        for layer in range(config.layers):
            width = config.embedding_dim if layer == 0 else config.state_size
            cell = {"weight_ih": (gates, width), "weight_hh": (gates, h), "bias_ih": (gates,), "bias_hh": (gates,)}
            if config.bidirectional:
                for direction in ("forward_rnn", "backward_rnn"):
                    shapes.update({f"encoder.rnn.{layer}.{direction}.{k}_l0": v for k, v in cell.items()})
            else:
                shapes.update({f"encoder.rnn.{k}_l{layer}": v for k, v in cell.items()})
        pooled = config.state_size * (3 if config.pooling == "concat" else 1)
        shapes.update({"head.weight": (config.num_classes, pooled), "head.bias": (config.num_classes,)})
        return shapes

    @property
    def embedding(self) -> nn.Embedding:
        return self.encoder.embedding

    @property
    def pooled_size(self) -> int:
        return self.config.state_size * (3 if self.config.pooling == "concat" else 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.encoder.embed(tokens), lengths)

    def forward_embedded(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits from embedded tokens (batch, width, embedding_dim): what gradient attributions differentiate."""
        encoded = self.encoder.encode(x, lengths, steps=self.config.pooling != "last")
        return self.head(self.dropout(pool(encoded, self.config.pooling)))
