"""The recurrent classifier: Embedding -> SimpleRNN | LSTM | GRU (bidirectional, stacked) -> Linear.

Masking (the lesson's `mask_zero=True`) means padded positions take no part in the recurrence, in either
direction and at every depth: the logits of a text are the same whether it is run alone or inside a padded
batch. It is done without a per-step mask. Rows of equal length are run together as a dense tensor (PyTorch's
fused oneDNN/cuDNN kernels only run on dense input), and the final states are put back in batch order; a batch
with many different lengths falls back to `pack_padded_sequence`. With `mask=False` the RNN reads the padding,
which is what the lesson's unmasked models do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .errors import TextrnnError

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
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
    # More distinct lengths than this in one batch: one packed run instead of that many dense runs. Dense runs
    # win well past 40 lengths on a 2-core CPU (bench/README.md), so packing is only the last resort.
    max_length_groups = 64

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.directions = 2 if c.bidirectional else 1
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)
        rnn_kwargs = dict(num_layers=c.layers, bidirectional=c.bidirectional, batch_first=True,
                          dropout=c.dropout if c.layers > 1 else 0.0)
        if c.cell == "rnn":
            rnn_kwargs["nonlinearity"] = "tanh"
        self.rnn = CELLS[c.cell](c.embedding_dim, c.hidden_size, **rnn_kwargs)
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
            if name.startswith("weight_ih"):
                # Keras's kernel is (input, gates * hidden); Glorot's limit depends only on the two fans.
                limit = math.sqrt(6.0 / (param.shape[0] + param.shape[1]))
                nn.init.uniform_(param, -limit, limit)
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(param)
            elif name.startswith("bias"):
                nn.init.zeros_(param)
                if self.config.cell == "lstm" and name.startswith("bias_ih"):
                    with torch.no_grad():
                        param[hidden : 2 * hidden] = 1.0  # PyTorch gate order: input, forget, cell, output
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    # -- forward ----------------------------------------------------------------------------------------------
    def _final_state(self, h_n) -> torch.Tensor:
        """The last layer's final hidden state, directions concatenated: (batch, directions * hidden)."""
        if isinstance(h_n, tuple):  # LSTM: (h, c)
            h_n = h_n[0]
        last = h_n[-self.directions :]  # (directions, batch, hidden)
        return last.transpose(0, 1).reshape(h_n.shape[1], -1)

    def _run_dense(self, x: torch.Tensor) -> torch.Tensor:
        _, h_n = self.rnn(x)
        return self._final_state(h_n)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Final RNN state of each row: (batch, directions * hidden). `lengths` lives on the CPU."""
        x = self.embedding(tokens)
        if not self.config.mask:
            return self._run_dense(x)
        lengths = lengths.cpu()
        distinct = torch.unique(lengths)
        if len(distinct) == 1:
            length = int(distinct[0])
            if length == 0:  # nothing to read: Keras's fully masked RNN returns its zero initial state
                return x.new_zeros(x.shape[0], self.output_size)
            return self._run_dense(x[:, :length])
        if len(distinct) <= self.max_length_groups:
            states, order = [], []
            for length in distinct.tolist():
                rows = torch.nonzero(lengths == length).squeeze(1)
                if length == 0:
                    states.append(x.new_zeros(len(rows), self.output_size))
                else:
                    states.append(self._run_dense(x[rows.to(x.device), :length]))
                order.append(rows)
            inverse = torch.argsort(torch.cat(order)).to(x.device)
            return torch.cat(states)[inverse]
        packed = pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(packed)  # h_n comes back in the caller's row order
        state = self._final_state(h_n)
        empty = lengths == 0
        if empty.any():
            state = state.masked_fill(empty.to(x.device)[:, None], 0.0)
        return state

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
        extra = sum(p.numel() for n, p in model.rnn.named_parameters() if n.startswith("bias_hh"))
    return {"pytorch": total, "keras": total - extra}


def summary(model: RNNClassifier, name: str = "textrnn") -> str:
    """A table in the manner of Keras's `model.summary()`: layers, output shapes, parameter counts."""
    c = model.config
    rows = [("embedding (Embedding)", f"(None, None, {c.embedding_dim})", model.embedding.weight.numel())]
    cell = CELL_NAMES[c.cell]
    for layer in range(c.layers):
        params = sum(p.numel() for n, p in model.rnn.named_parameters()
                     if n.endswith(f"_l{layer}") or n.endswith(f"_l{layer}_reverse"))
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
