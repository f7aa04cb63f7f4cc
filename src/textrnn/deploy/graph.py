"""The classifier as export traces it: each recurrent layer as one ONNX LSTM / GRU / RNN node that reads the
texts' lengths (`sequence_lens`), both directions in one node.

Training keeps one unidirectional RNN per layer and direction and reverses each row within its length for the
backward one (encoder.py), because PyTorch's fused kernels take no lengths. ONNX's recurrent operators do:
given `sequence_lens`, the forward direction stops at each row's last real position and the reverse direction
starts there, so the graph needs no reversal gathers, and its final state `Y_h` is already each text's last
real state. The result equals the encoder's (the export's parity test holds it to 1e-5), and onnxruntime's
dynamic quantization turns each LSTM node into one DynamicQuantizeLSTM.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.classifier import RNNClassifier, pool
from ..models.encoder import Encoded

# PyTorch's gate blocks, in the order ONNX's operators keep them: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
ONNX_OPS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def onnx_weights(modules: list[tuple[nn.Module, str]], cell: str) -> tuple[torch.Tensor, ...]:
    """W (directions, gates*hidden, input), R (directions, gates*hidden, hidden) and B (directions,
    2*gates*hidden) of one layer, from (module, parameter suffix) pairs, one per direction."""
    order = GATE_ORDER[cell]

    def onnx_order(t: torch.Tensor) -> torch.Tensor:
        blocks = t.detach().chunk(len(order))
        return torch.cat([blocks[i] for i in order])

    def stacked(name: str) -> torch.Tensor:
        return torch.stack([onnx_order(getattr(m, f"{name}{suffix}")) for m, suffix in modules])

    return stacked("weight_ih"), stacked("weight_hh"), torch.cat([stacked("bias_ih"), stacked("bias_hh")], 1)


def _step(cell: str, xw: torch.Tensor, h: torch.Tensor, c: torch.Tensor, r: torch.Tensor, rb: torch.Tensor):
    """One step of ONNX's operator (default activations; GRU with linear_before_reset=1, as PyTorch's GRU)."""
    hr = h @ r.t() + rb
    if cell == "rnn":
        return torch.tanh(xw + hr), c
    if cell == "gru":
        xz, xr, xh = xw.chunk(3, 1)
        hz, hrr, hh = hr.chunk(3, 1)
        z, reset = torch.sigmoid(xz + hz), torch.sigmoid(xr + hrr)
        candidate = torch.tanh(xh + reset * hh)
        return (1 - z) * candidate + z * h, c
    i, o, f, g = (xw + hr).chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class RecurrentLayer(torch.autograd.Function):
    """One layer, all directions: exported as one ONNX node, computed in PyTorch by ONNX's definition (what the
    tracer sees for shapes, and what the tests compare with the encoder)."""

    @staticmethod
    def forward(ctx, x, lengths, w, r, b, cell):
        batch, width = x.shape[:2]
        hidden = r.shape[2]
        gates = w.shape[1]
        steps, finals = [], []
        for d in range(w.shape[0]):
            xw = x @ w[d].t() + b[d, :gates]
            h = x.new_zeros(batch, hidden)
            c = x.new_zeros(batch, hidden)
            out = x.new_zeros(batch, width, hidden)
            for t in (range(width) if d == 0 else reversed(range(width))):
                live = (t < lengths)[:, None]
                h_t, c_t = _step(cell, xw[:, t], h, c, r[d], b[d, gates:])
                h, c = torch.where(live, h_t, h), torch.where(live, c_t, c)
                out[:, t] = torch.where(live, h_t, torch.zeros_like(h_t))
            steps.append(out)
            finals.append(h)
        return torch.cat(steps, 2), torch.cat(finals, 1)

    @staticmethod
    def symbolic(g, x, lengths, w, r, b, cell):
        directions, hidden = w.type().sizes()[0], r.type().sizes()[2]
        options = {"linear_before_reset_i": 1} if cell == "gru" else {}
        seq_first = g.op("Transpose", x, perm_i=[1, 0, 2])
        sequence_lens = g.op("Cast", lengths, to_i=6)  # INT32, as ONNX's recurrent operators want
        outputs = g.op(ONNX_OPS[cell], seq_first, w, r, b, sequence_lens, hidden_size_i=hidden,
                       direction_s="bidirectional" if directions == 2 else "forward",
                       outputs=3 if cell == "lstm" else 2, **options)
        y, y_h = outputs[0], outputs[1]  # (width, directions, batch, hidden), (directions, batch, hidden)
        keep_two = g.op("Constant", value_t=torch.tensor([0, 0, -1], dtype=torch.long))
        steps = g.op("Reshape", g.op("Transpose", y, perm_i=[2, 0, 1, 3]), keep_two)
        final = g.op("Reshape", g.op("Transpose", y_h, perm_i=[1, 0, 2]),
                     g.op("Constant", value_t=torch.tensor([0, -1], dtype=torch.long)))
        return steps, final


class DeployedClassifier(nn.Module):
    """tokens, lengths -> class probabilities, with the classifier's own embedding, pooling and head, and its
    recurrence as RecurrentLayer nodes."""

    def __init__(self, model: RNNClassifier):
        super().__init__()
        self.model = model
        self.config = c = model.config
        rnn = model.encoder.rnn
        for i in range(c.layers):
            if c.bidirectional:
                modules = [(rnn[i]["forward_rnn"], "_l0"), (rnn[i]["backward_rnn"], "_l0")]
            else:
                modules = [(rnn, f"_l{i}")]
            for name, tensor in zip("wrb", onnx_weights(modules, c.cell)):
                self.register_buffer(f"{name}{i}", tensor)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = self.model.encoder.embed(tokens)
        if not c.mask:  # the unmasked model reads the padding: every row is as long as the batch
            lengths = torch.ones_like(tokens).sum(1)
        # an empty text runs one step of padding, whose result is then set to zero as the encoder does
        running = lengths.clamp(min=1)
        for i in range(c.layers):
            x, final = RecurrentLayer.apply(x, running, getattr(self, f"w{i}"), getattr(self, f"r{i}"),
                                            getattr(self, f"b{i}"), c.cell)
        final = final.masked_fill((lengths == 0)[:, None], 0.0)
        pooled = self.model.head_input(pool(Encoded(final, x, lengths), c.pooling),
                                       self.model.bag_of_ngrams(tokens, lengths))
        return torch.softmax(self.model.head(pooled), dim=-1)
