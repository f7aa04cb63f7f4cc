"""A recurrent language model: token ids -> embedding -> stacked SimpleRNN | LSTM | GRU -> next-token logits at
every step, with the regularisation that makes LSTM language models work on small corpora (Merity et al. 2018,
AWD-LSTM):

* embedding dropout: whole words dropped from the embedding table for a batch (every occurrence at once);
* locked (variational) dropout: one mask per sequence, the same at every step, on the embeddings, between
  layers and before the output layer;
* DropConnect on the hidden-to-hidden weights (`weight_drop`), a new mask per forward pass, through
  `torch.nn.utils.parametrize`, so the fused oneDNN/cuDNN kernels still run;
* tied input and output embeddings (the last layer's width is then the embedding's, as in AWD-LSTM).

The output layer is a full softmax, or an adaptive softmax (`nn.AdaptiveLogSoftmaxWithLoss`, Grave et al. 2017)
over frequency-ordered ids, which textrnn's word vocabularies are. The state (one per layer) is carried from one
window to the next by the training loop (truncated backpropagation through time) and by generation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import TextrnnError
from .config import check_shape
from .fast_lstm import LSTM

SOFTMAXES = ("full", "adaptive")


@dataclass
class LMConfig:
    vocab_size: int
    cell: str = "lstm"
    embedding_dim: int = 128
    hidden_size: int = 256
    layers: int = 2
    tie_weights: bool = True
    embed_dropout: float = 0.1
    input_dropout: float = 0.3
    hidden_dropout: float = 0.2
    output_dropout: float = 0.3
    weight_drop: float = 0.3
    softmax: str = "full"
    cutoffs: tuple[int, ...] | None = None  # adaptive softmax: where its clusters start (default: from vocab size)

    def __post_init__(self) -> None:
        check_shape(self)
        for name in ("embed_dropout", "input_dropout", "hidden_dropout", "output_dropout", "weight_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise TextrnnError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.softmax not in SOFTMAXES:
            raise TextrnnError(f"unknown softmax {self.softmax!r}: choose one of {', '.join(SOFTMAXES)}")
        if self.softmax == "adaptive" and self.tie_weights:
            raise TextrnnError("an adaptive softmax has its own output weights: tie_weights goes with softmax='full'")
        if self.cutoffs is not None:
            self.cutoffs = tuple(int(c) for c in self.cutoffs)
            if list(self.cutoffs) != sorted(set(self.cutoffs)) or not 0 < self.cutoffs[0] or \
                    self.cutoffs[-1] >= self.vocab_size:
                raise TextrnnError(f"cutoffs must increase and lie inside the vocabulary of {self.vocab_size}")

    @property
    def output_size(self) -> int:
        """The last layer's width: the embedding's when the output layer shares its weights."""
        return self.embedding_dim if self.tie_weights else self.hidden_size

    def adaptive_cutoffs(self) -> list[int]:
        if self.cutoffs is not None:
            return list(self.cutoffs)
        cuts = [c for c in (2_000, 10_000, 50_000) if c < self.vocab_size - 1]
        return cuts or [max(1, self.vocab_size // 2)]

    def to_dict(self) -> dict:
        values = asdict(self)
        values["cutoffs"] = list(self.cutoffs) if self.cutoffs is not None else None
        return values


class DropConnect(nn.Module):
    """A parametrization that drops weights (not activations), with a new mask at each forward pass in training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(weight, self.p, self.training)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence, shared by all its steps (x: batch, time, features)."""
    if not training or p == 0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


CELL_MODULES = {"rnn": nn.RNN, "lstm": LSTM, "gru": nn.GRU}  # LSTM: nn.LSTM with a compiled CPU recurrence


class RNNLanguageModel(nn.Module):
    architecture = "RNNLanguageModel"

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)
        sizes = [c.embedding_dim] + [c.hidden_size] * (c.layers - 1) + [c.output_size]
        self.rnns = nn.ModuleList(CELL_MODULES[c.cell](sizes[i], sizes[i + 1], batch_first=True)
                                  for i in range(c.layers))
        if c.softmax == "adaptive":
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(c.output_size, c.vocab_size, c.adaptive_cutoffs(),
                                                         div_value=4.0)
        else:
            self.decoder = nn.Linear(c.output_size, c.vocab_size)
            if c.tie_weights:
                self.decoder.weight = self.embedding.weight
        self.reset_parameters()
        if c.weight_drop > 0:
            for rnn in self.rnns:
                parametrize.register_parametrization(rnn, "weight_hh_l0", DropConnect(c.weight_drop))

    @staticmethod
    def weight_shapes(config: LMConfig) -> dict[str, tuple[int, ...]]:
        """Every weight's name and shape as the model's state_dict has them, without building it."""
        c = config
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[c.cell]
        sizes = [c.embedding_dim] + [c.hidden_size] * (c.layers - 1) + [c.output_size]
        shapes = {"embedding.weight": (c.vocab_size, c.embedding_dim)}
        for i in range(c.layers):
            n, h = sizes[i], sizes[i + 1]
            hh = f"rnns.{i}.parametrizations.weight_hh_l0.original" if c.weight_drop > 0 else f"rnns.{i}.weight_hh_l0"
            shapes.update({f"rnns.{i}.weight_ih_l0": (gates * h, n), hh: (gates * h, h),
                           f"rnns.{i}.bias_ih_l0": (gates * h,), f"rnns.{i}.bias_hh_l0": (gates * h,)})
        if c.softmax == "adaptive":
            cutoffs = c.adaptive_cutoffs() + [c.vocab_size]
            shapes["decoder.head.weight"] = (cutoffs[0] + len(cutoffs) - 1, c.output_size)
            for i in range(len(cutoffs) - 1):
                width = int(c.output_size // (4.0 ** (i + 1)))
                shapes[f"decoder.tail.{i}.0.weight"] = (width, c.output_size)
                shapes[f"decoder.tail.{i}.1.weight"] = (cutoffs[i + 1] - cutoffs[i], width)
        else:
            if not c.tie_weights:
                shapes["decoder.weight"] = (c.vocab_size, c.output_size)
            shapes["decoder.bias"] = (c.vocab_size,)
        return shapes

    def weights_to_save(self) -> dict[str, torch.Tensor]:
        """The state dict without the tied output weight (it is the embedding, stored once)."""
        state = self.state_dict()
        if self.config.tie_weights and self.config.softmax == "full":
            state.pop("decoder.weight", None)
        return state

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Load what `weights_to_save` gave; the tied output weight follows the embedding."""
        missing, unexpected = self.load_state_dict(weights, strict=False)
        tied = {"decoder.weight"} if self.config.tie_weights and self.config.softmax == "full" else set()
        if set(missing) - tied or unexpected:
            raise RuntimeError(f"missing {sorted(set(missing) - tied)}, unexpected {sorted(unexpected)}")

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        for rnn in self.rnns:
            for name, param in rnn.named_parameters():
                if "weight_hh" in name:
                    nn.init.orthogonal_(param)
                elif "weight_ih" in name:
                    nn.init.xavier_uniform_(param)
                else:
                    nn.init.zeros_(param)
                    if self.config.cell == "lstm" and name.startswith("bias_ih"):
                        with torch.no_grad():
                            param[rnn.hidden_size : 2 * rnn.hidden_size] = 1.0  # forget gate
        if isinstance(self.decoder, nn.Linear):
            nn.init.zeros_(self.decoder.bias)

    # -- forward ------------------------------------------------------------------------------------------------
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        weight = self.embedding.weight
        p = self.config.embed_dropout
        if self.training and p > 0:
            keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
            weight = weight * keep
        return nn.functional.embedding(tokens, weight)

    def forward(self, tokens: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        """Each step's output (batch, time, output_size), before the output layer, and the state after the last
        step (one per layer: (h, c) for an LSTM, h otherwise), to carry into the next window."""
        c = self.config
        x = locked_dropout(self.embed(tokens), c.input_dropout, self.training)
        new_state = []
        for i, rnn in enumerate(self.rnns):
            x, s = rnn(x, None if state is None else state[i])
            new_state.append(s)
            x = locked_dropout(x, c.output_dropout if i == c.layers - 1 else c.hidden_dropout, self.training)
        return x, new_state

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per token) of the next tokens `targets` (batch, time)."""
        flat, target = outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1)
        if isinstance(self.decoder, nn.AdaptiveLogSoftmaxWithLoss):
            return self.decoder(flat, target).loss
        return nn.functional.cross_entropy(self.decoder(flat), target)

    def log_probs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every next token, (..., vocab_size)."""
        if isinstance(self.decoder, nn.AdaptiveLogSoftmaxWithLoss):
            return self.decoder.log_prob(outputs.reshape(-1, outputs.shape[-1])).reshape(*outputs.shape[:-1], -1)
        return torch.log_softmax(self.decoder(outputs), dim=-1)


def detach_state(state: list) -> list:
    """The state with its history cut: the next window backpropagates into its own steps only."""
    return [tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach() for s in state]
