"""The recurrent encoder: token ids -> embeddings -> SimpleRNN | LSTM | GRU (bidirectional, stacked) -> each
step's state and each text's final state. The classifier (and any other head) is built on top of it.

Masking (the lesson's `mask_zero=True`) means padded positions take no part in the recurrence, in either
direction and at every depth: a text's states are the same whether it is run alone or inside a padded batch.
It is done without a per-step mask and without `pack_padded_sequence`, so every batch runs through fused
kernels (PyTorch's oneDNN/cuDNN, or textrnn's compiled LSTM recurrence, `fast_lstm`), which take dense input:

* Padding sits at the end of each row, so a forward-reading RNN computes every real position exactly as if
  the padding were absent; a text's final state is its output at its last real position, not the RNN's last
  step.
* The backward direction reads each row reversed *within its length* (real tokens reversed, padding still at
  the end), so it too meets the padding only after the text, and its outputs are put back in the original
  order before the next layer reads them. So a bidirectional model keeps one unidirectional RNN per layer and
  direction. textrnn's LSTM kernel reads the backward direction in that order itself, both directions in one
  call, so neither the input nor the output is reordered.

With `mask=False` the RNN reads the padding, as the lesson's unmasked models do: every row counts as long as the
batch, so the forward direction ends on padding and the backward direction starts on it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .config import ModelConfig
from .fast_lstm import LSTM, bidirectional
from .simple_rnn import SimpleRNN

# nn.RNN and nn.LSTM with faster CPU paths (a written-out backward; a compiled recurrence), the same weights
CELL_MODULES = {"rnn": SimpleRNN, "lstm": LSTM, "gru": nn.GRU}


class Encoded(NamedTuple):
    """What the encoder gives back for a batch."""

    final: torch.Tensor  # (batch, directions * hidden): each text's final state (zeros for an empty text)
    steps: torch.Tensor | None  # (batch, width, directions * hidden): every step's state, when asked for
    lengths: torch.Tensor  # (batch,): the positions that count (the batch width everywhere when unmasked)


class RNNEncoder(nn.Module):
    def __init__(self, config: ModelConfig, initialise: bool = True):
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.table_rows, c.embedding_dim)  # the words' rows, then any n-grams'
        cell = CELL_MODULES[c.cell]
        extra = {"nonlinearity": "tanh"} if c.cell == "rnn" else {}
        if c.bidirectional:
            # one unidirectional RNN per layer and direction: the backward one reads length-reversed rows
            self.rnn = nn.ModuleList(
                nn.ModuleDict({d: cell(c.embedding_dim if i == 0 else 2 * c.hidden_size, c.hidden_size,
                                       batch_first=True, **extra) for d in ("forward_rnn", "backward_rnn")})
                for i in range(c.layers))
        else:
            self.rnn = cell(c.embedding_dim, c.hidden_size, num_layers=c.layers, batch_first=True,
                            dropout=c.dropout if c.layers > 1 else 0.0, **extra)
        self.dropout = nn.Dropout(c.dropout)
        if initialise:
            self.reset_parameters()

    @property
    def output_size(self) -> int:
        return self.config.state_size

    def reset_parameters(self) -> None:
        """Keras's initialisers, so that one epoch of training behaves like the lesson's.

        Embedding uniform(-0.05, 0.05); input kernels Glorot-uniform; recurrent kernels orthogonal; biases zero,
        except the LSTM forget gate's, which starts at 1 (Keras's `unit_forget_bias`).
        """
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        hidden = self.config.hidden_size
        for name, param in self.rnn.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf.startswith("weight_ih"):
                # Keras's kernel is (input, gates * hidden); Glorot's limit depends only on the two fans.
                limit = math.sqrt(6.0 / (param.shape[0] + param.shape[1]))
                nn.init.uniform_(param, -limit, limit)
            elif leaf.startswith("weight_hh"):
                nn.init.orthogonal_(param)
            elif leaf.startswith("bias"):
                nn.init.zeros_(param)
                if self.config.cell == "lstm" and leaf.startswith("bias_ih"):
                    with torch.no_grad():
                        param[hidden : 2 * hidden] = 1.0  # PyTorch gate order: input, forget, cell, output

    # -- forward ----------------------------------------------------------------------------------------------
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """The embedded tokens, (batch, width, embedding_dim), with the embedding's dropouts in training (each
        kept value scaled by 1 / (1 - p), so that inference needs no change; padding reads zeros either way)."""
        x = self.embedding(tokens)
        if not self.training:
            return x
        c = self.config
        if c.embedding_dropout > 0:  # one draw per word of the vocabulary, so a word is dropped everywhere at once
            p = c.embedding_dropout
            keep = x.new_empty(c.vocab_size).bernoulli_(1 - p).div_(1 - p)
            x = x * keep.index_select(0, tokens.reshape(-1)).view(*tokens.shape, 1)
        if c.token_dropout > 0:  # one draw per token occurrence
            p = c.token_dropout
            x = x * x.new_empty(*tokens.shape, 1).bernoulli_(1 - p).div_(1 - p)
        if c.input_dropout > 0:  # one draw per text and feature, the same at every step (Gal & Ghahramani 2016)
            p = c.input_dropout
            x = x * x.new_empty(tokens.shape[0], 1, x.shape[2]).bernoulli_(1 - p).div_(1 - p)
        return x

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, steps: bool = False) -> Encoded:
        return self.encode(self.embed(tokens), lengths, steps)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, steps: bool = False) -> Encoded:
        """Run the RNN over embedded rows `x` (batch, width, embedding_dim); with `steps`, keep every step's
        state too (the last layer's, both directions in the original token order)."""
        batch, width = x.shape[:2]
        if self.config.mask:
            lengths = lengths.to(x.device)
        elif torch.jit.is_tracing():  # the width as a function of the input, not the traced example's number
            lengths = torch.ones_like(x[:, :, 0], dtype=torch.long).sum(1)
        else:
            lengths = torch.full_like(lengths, width, device=x.device)
        # nothing to read: Keras's fully masked RNN returns its zero initial state (a traced graph keeps the
        # general path, which must hold for every width)
        if width == 0 and not torch.jit.is_tracing():
            final = x.new_zeros(batch, self.output_size)
            return Encoded(final, x.new_zeros(batch, 0, self.output_size) if steps else None, lengths)
        # unmasked and not traced, every row ends at the last step: no row is empty, no per-row gather
        ends_together = not self.config.mask and not torch.jit.is_tracing()
        last = (lengths - 1).clamp(min=0)  # each row's last real position
        rows = torch.arange(batch, device=x.device)
        outputs = None
        if not self.config.bidirectional:
            out, _ = self.rnn(x)
            final = out[:, -1] if ends_together else out[rows, last]
            outputs = out if steps else None
        else:
            # position t of a row reversed within its length: L-1-t for real positions, t for padding
            positions = torch.arange(width, device=x.device)[None, :]
            reverse = torch.where(positions < lengths[:, None], last[:, None] - positions, positions)

            def reversed_rows(t: torch.Tensor) -> torch.Tensor:  # its own inverse
                return t.gather(1, reverse[:, :, None].expand_as(t))

            for i, layer in enumerate(self.rnn):
                if i > 0:
                    x = self.dropout(x)  # between layers, as nn.LSTM's `dropout` does
                forward_rnn, backward_rnn = layer["forward_rnn"], layer["backward_rnn"]
                if isinstance(forward_rnn, LSTM) and forward_rnn.uses_kernel(x):
                    # one call runs both directions; the kernel reads the backward one in its order itself
                    both, final = bidirectional(forward_rnn, backward_rnn, x, lengths)
                else:
                    both = torch.cat([forward_rnn(x)[0], reversed_rows(backward_rnn(reversed_rows(x))[0])], dim=2)
                    final = None
                if i < len(self.rnn) - 1:
                    x = both
                    continue
                if final is None:  # each row's forward state at its last real position, its backward one at 0
                    hidden = self.config.hidden_size
                    final = torch.cat([both[rows, last, :hidden], both[:, 0, hidden:]], dim=1)
                outputs = both if steps else None
        if ends_together:
            return Encoded(final, outputs, lengths)
        empty = lengths == 0
        # the check skips a masked_fill on the usual batch; a traced graph must not bake one outcome of it in
        if torch.jit.is_tracing() or bool(empty.any()):
            final = final.masked_fill(empty[:, None], 0.0)
        return Encoded(final, outputs, lengths)
