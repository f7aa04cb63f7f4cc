"""The recurrent classifier: Embedding -> SimpleRNN | LSTM | GRU (bidirectional, stacked) -> Linear.

Masking (the lesson's `mask_zero=True`) means padded positions take no part in the recurrence, in either
direction and at every depth: the logits of a text are the same whether it is run alone or inside a padded
batch. It is done without a per-step mask and without `pack_padded_sequence`, so every batch runs through
PyTorch's fused oneDNN/cuDNN kernels, which only take dense input:

* Padding sits at the end of each row, so a forward-reading RNN computes every real position exactly as if
  the padding were absent; a text's final state is its output at its last real position, not the RNN's last
  step.
* The backward direction reads each row reversed *within its length* (real tokens reversed, padding still at
  the end), so it too meets the padding only after the text, and its outputs are put back in the original
  order before the next layer reads them. So a bidirectional model keeps one unidirectional RNN per layer and
  direction.

With `mask=False` the RNN reads the padding, as the lesson's unmasked models do: every row counts as long as the
batch, so the forward direction ends on padding and the backward direction starts on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import TextrnnError
from .simple_rnn import SimpleRNN

CELLS = {"rnn": SimpleRNN, "lstm": nn.LSTM, "gru": nn.GRU}  # SimpleRNN: nn.RNN with a faster CPU backward
CELL_NAMES = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


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

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise TextrnnError(f"unknown cell {self.cell!r}: choose one of {', '.join(CELLS)}")
        for name in ("vocab_size", "embedding_dim", "hidden_size", "layers"):
            if getattr(self, name) < 1:
                raise TextrnnError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise TextrnnError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise TextrnnError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class RNNClassifier(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.directions = 2 if c.bidirectional else 1
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)
        cell = CELLS[c.cell]
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
        self.classifier = nn.Linear(self.directions * c.hidden_size, c.num_classes)
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        return self.directions * self.config.hidden_size

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
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    # -- forward ----------------------------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Final RNN state of each row: (batch, directions * hidden)."""
        batch, width = tokens.shape
        if width == 0:  # nothing to read: Keras's fully masked RNN returns its zero initial state
            return self.classifier.weight.new_zeros(batch, self.output_size)
        x = self.embedding(tokens)
        lengths = lengths.to(x.device) if self.config.mask else torch.full_like(lengths, width, device=x.device)
        last = (lengths - 1).clamp(min=0)  # each row's last real position
        rows = torch.arange(batch, device=x.device)
        if not self.config.bidirectional:
            out, _ = self.rnn(x)
            state = out[rows, last]
        else:
            # position t of a row reversed within its length: L-1-t for real positions, t for padding
            positions = torch.arange(width, device=x.device)[None, :]
            reverse = torch.where(positions < lengths[:, None], last[:, None] - positions, positions)

            def reversed_rows(t: torch.Tensor) -> torch.Tensor:  # its own inverse
                return t.gather(1, reverse[:, :, None].expand_as(t))

            for i, layer in enumerate(self.rnn):
                if i > 0:
                    x = self.dropout(x)  # between layers, as nn.LSTM's `dropout` does
                forward, _ = layer["forward_rnn"](x)
                backward, _ = layer["backward_rnn"](reversed_rows(x))
                if i == len(self.rnn) - 1:
                    state = torch.cat([forward[rows, last], backward[rows, last]], dim=1)
                else:
                    x = torch.cat([forward, reversed_rows(backward)], dim=2)
        empty = lengths == 0
        return state.masked_fill(empty[:, None], 0.0) if bool(empty.any()) else state

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.encode(tokens, lengths)))


# -- summary --------------------------------------------------------------------------------------------------
def count_parameters(model: RNNClassifier) -> dict[str, int]:
    """PyTorch's parameter count and the count Keras would report for the same layers.

    PyTorch's RNN and LSTM keep two bias vectors per layer and direction (`bias_ih` and `bias_hh`) where Keras's
    SimpleRNN and LSTM keep one, so they carry `gates * hidden` more parameters per layer and direction. Keras's
    GRU (reset_after=True, the cuDNN form) keeps both biases, as PyTorch does, so the GRU counts agree.
    """
    total = sum(p.numel() for p in model.parameters())
    extra = 0
    if model.config.cell != "gru":
        extra = sum(p.numel() for n, p in model.rnn.named_parameters() if "bias_hh" in n)
    return {"pytorch": total, "keras": total - extra}


def summary(model: RNNClassifier, name: str = "textrnn") -> str:
    """A table in the manner of Keras's `model.summary()`: layers, output shapes, parameter counts."""
    c = model.config
    rows = [("embedding (Embedding)", f"(None, None, {c.embedding_dim})", model.embedding.weight.numel())]
    cell = CELL_NAMES[c.cell]
    for layer in range(c.layers):
        if c.bidirectional:
            params = sum(p.numel() for p in model.rnn[layer].parameters())
        else:
            params = sum(p.numel() for n, p in model.rnn.named_parameters() if n.endswith(f"_l{layer}"))
        width = model.output_size
        shape = f"(None, None, {width})" if layer < c.layers - 1 else f"(None, {width})"
        kind = f"Bidirectional {cell}" if c.bidirectional else cell
        rows.append((f"{c.cell}_{layer + 1} ({kind})", shape, params))
    rows.append(("dense (Linear)", f"(None, {c.num_classes})", sum(p.numel() for p in model.classifier.parameters())))
    counts = count_parameters(model)
    w0 = max(28, max(len(r[0]) for r in rows) + 2)
    w1 = 22
    line = "─" * (w0 + w1 + 14)
    out = [f'Model: "{name}"', line, f"{'Layer (type)':<{w0}}{'Output shape':<{w1}}{'Param #':>14}", line]
    out += [f"{a:<{w0}}{b:<{w1}}{p:>14,}" for a, b, p in rows]
    out.append(line)
    out.append(f"Total params: {counts['pytorch']:,}")
    out.append(f"Keras count:  {counts['keras']:,}" + (
        "  (PyTorch keeps a second bias vector per gate, bias_hh, that Keras's SimpleRNN/LSTM do not have)"
        if counts["keras"] != counts["pytorch"] else "  (same as PyTorch's)"))
    out.append(f"Masking: {'on (padding skipped in the recurrence)' if c.mask else 'off (the RNN reads the padding)'}")
    return "\n".join(out)
