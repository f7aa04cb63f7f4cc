"""An LSTM layer whose recurrence runs in a small compiled kernel on the CPU (`lstm_kernel.cpp`).

PyTorch's CPU LSTM is oneDNN's, whose training backward takes more than twice its forward; at the BiLSTM's shapes
(256 texts, 64 units) it reached 27-30 % of the fp32 matmul peak. `LSTM` computes what
`nn.LSTM(batch_first=True)` computes, with one autograd node per layer:

    forward   gates = x W_ih^T + b_ih + b_hh                   (PyTorch: one matmul for every step)
              per step: gates_t += h_{t-1} W_hh^T, the gate arithmetic, c_t and h_t      (the kernel)
    backward  per step: the gates' gradients, and h_{t-1}'s through the recurrence       (the kernel)
              dW_hh and db (against a column of ones), dW_ih, dx          (PyTorch: three matmuls)

The kernel splits the batch's rows between threads for the whole sequence, as rows never interact: no thread
waits for another between steps, and a row's arithmetic is the same however the batch is split. Its outputs
differ from oneDNN's by float rounding (its exp is a polynomial), not more (tests/test_fast_lstm.py).

The kernel is C++ compiled on first use with the system's `g++` into a per-user cache (a second of compiling,
once per machine and source; `textrnn.native`). Without a compiler, on CUDA, under bf16 autocast, for packed
input, or when `TEXTRNN_LSTM_KERNEL=0`, the layer is `nn.LSTM`'s own. The kernel's vectors need hidden sizes that
are multiples of 16: other sizes run padded with zero units, which stay zero and change nothing (`_weights`).
It subclasses `nn.LSTM`, so parameters and state dicts are nn.LSTM's.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import torch
from torch import nn

from .. import native

SOURCE = Path(__file__).with_name("lstm_kernel.cpp")
ABI = 8  # lstm_kernel.cpp's textrnn_lstm_abi(): the argument lists below are for this version of the source
ENABLED_ENV = "TEXTRNN_LSTM_KERNEL"  # "0" turns the kernel off (oneDNN's LSTM everywhere)


_P, _I = ctypes.c_void_p, ctypes.c_int
SIGNATURES = {"textrnn_lstm_forward": ([_I] * 6 + [_P] * 11 + [_I], None),
              "textrnn_lstm_backward": ([_I] * 5 + [_P] * 12 + [_I], None)}


@cache
def kernel() -> ctypes.CDLL | None:
    """The compiled kernel, building it if this machine has not yet; None where it cannot be had."""
    return native.load(SOURCE, "textrnn_lstm_abi", ABI, ENABLED_ENV, SIGNATURES)


def _address(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class _LSTMLayer(torch.autograd.Function):
    """One LSTM layer in one or two directions over the same input: direction 0 reads each row first to last,
    from the state (h0, c0) (batch, hidden) when given, else from zeros; direction 1 (where `lengths` is given)
    reads a row's first lengths[b] steps last to first, then its padding in order, from zeros. Outputs: every
    step's state (batch, steps, directions * hidden), each direction's at the positions it read; direction 0's
    cell state after its last step (batch, hidden), what nn.LSTM returns as c_n; and each row's final states
    (batch, directions * hidden): its state after step `final_steps[b]` (in the order read), in each direction."""

    @staticmethod
    def forward(ctx, x, lengths, final_steps, h0, c0, *weights):
        ctx.set_materialize_grads(False)  # an output the loss does not read sends no gradient: no zeros to add
        lib = kernel()
        directions = len(weights) // 4
        batch, steps, _ = x.shape
        hidden = weights[1].shape[1]
        weight_ih = torch.cat(weights[0::4])  # both directions' input projections in one matmul
        # the bias joins in the kernel: addmm would first copy it into every row of the output
        gates = torch.mm(x.reshape(batch * steps, -1), weight_ih.t()).view(batch, steps, -1)
        cell, out = (x.new_empty(batch, steps, directions * hidden) for _ in range(2))
        final = x.new_empty(batch, directions * hidden)
        # each step's starting state and a 1, per direction: dW_hh and the bias's gradient in one matmul
        out_before = x.new_empty(batch, steps, directions * (hidden + 1))
        for d in range(directions):
            w_t = weights[4 * d + 1].detach().t().contiguous()
            bias = (weights[4 * d + 2] + weights[4 * d + 3]).detach()
            g, s = slice(4 * hidden * d, None), slice(hidden * d, None)
            lib.textrnn_lstm_forward(steps, batch, hidden, 4 * hidden * directions, hidden * directions,
                                     (hidden + 1) * directions, _address(lengths) if d else None,
                                     final_steps.data_ptr(), w_t.data_ptr(), bias.data_ptr(),
                                     None if d else _address(h0), None if d else _address(c0),
                                     gates[..., g].data_ptr(), cell[..., s].data_ptr(), out[..., s].data_ptr(),
                                     out_before[..., (hidden + 1) * d :].data_ptr(), final[:, s].data_ptr(),
                                     torch.get_num_threads())
        ctx.save_for_backward(x, weight_ih, gates, cell, out_before, c0, *weights[1::4])
        ctx.lengths, ctx.final_steps = lengths, final_steps
        return out, cell[:, -1, :hidden], final

    @staticmethod
    def backward(ctx, grad_out, grad_cell_last, grad_final):
        x, weight_ih, gates, cell, out_before, c0, *weights_hh = ctx.saved_tensors
        batch, steps, _ = x.shape
        directions, hidden = len(weights_hh), weights_hh[0].shape[1]
        grad_out = None if grad_out is None else grad_out.contiguous()
        grad_final = None if grad_final is None else grad_final.contiguous()
        grad_gates = torch.empty_like(gates)
        initial = x.new_empty(2, batch, hidden)  # the gradients of h0 and c0, when direction 0 started from them
        for d in range(directions):
            dc = None if d or grad_cell_last is None else grad_cell_last.contiguous()
            g, s = slice(4 * hidden * d, None), slice(hidden * d, None)
            w = weights_hh[d].detach().contiguous()
            kernel().textrnn_lstm_backward(steps, batch, hidden, 4 * hidden * directions, hidden * directions,
                                           _address(ctx.lengths) if d else None, ctx.final_steps.data_ptr(),
                                           w.data_ptr(), gates[..., g].data_ptr(), cell[..., s].data_ptr(),
                                           None if grad_out is None else grad_out[..., s].data_ptr(), _address(dc),
                                           None if grad_final is None else grad_final[:, s].data_ptr(),
                                           None if d else _address(c0), grad_gates[..., g].data_ptr(),
                                           initial[0].data_ptr(), initial[1].data_ptr(), torch.get_num_threads())
            if d == 0 and c0 is not None:
                grad_h0, grad_c0 = initial.clone()
        by_row = grad_gates.view(batch * steps, -1)
        before = out_before.view(batch * steps, -1)
        grad_x = (by_row @ weight_ih).view_as(x)
        grad_weight_ih = (by_row.t() @ x.reshape(batch * steps, -1)).chunk(directions)
        grads = []
        for d in range(directions):
            rows = by_row[:, 4 * hidden * d : 4 * hidden * (d + 1)]
            # against each step's starting state: dW_hh; against the column of ones: the bias's gradient
            both = rows.t() @ before[:, (hidden + 1) * d : (hidden + 1) * (d + 1)]
            grad_weight_hh, grad_bias = both[:, :hidden], both[:, hidden].contiguous()
            grads += [grad_weight_ih[d], grad_weight_hh, grad_bias, grad_bias]
        if c0 is None:
            grad_h0 = grad_c0 = None
        return grad_x, None, None, grad_h0, grad_c0, *grads


VECTOR = 16  # the kernel's vectors hold 16 floats: it runs hidden sizes that are multiples of 16


def _padded_size(hidden: int) -> int:
    return -(-hidden // VECTOR) * VECTOR


def _weights(lstm: nn.LSTM, layer: int) -> list[torch.Tensor]:
    """The layer's (weight_ih, weight_hh, bias_ih, bias_hh) for the kernel: each gate's block padded with zero
    units up to a multiple of 16. A padded unit's gates are sigmoid(0) and tanh(0) = 0 at every step, so its cell
    and state stay 0, and its zero columns of weight_hh feed nothing into the real units: they compute what the
    unpadded layer does. F.pad is differentiable, so the padding's gradients are dropped on the way back."""
    weights = [getattr(lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    hidden = lstm.hidden_size
    extra = _padded_size(hidden) - hidden
    if not extra:
        return weights

    def by_gate(t: torch.Tensor, columns: int = 0) -> torch.Tensor:  # (4 H, n) -> (4 (H + extra), n + columns)
        return nn.functional.pad(t.view(4, hidden, -1), (0, columns, 0, extra)).view(4 * (hidden + extra), -1)

    weight_ih, weight_hh, bias_ih, bias_hh = weights
    return [by_gate(weight_ih), by_gate(weight_hh, extra), by_gate(bias_ih).view(-1), by_gate(bias_hh).view(-1)]


def _real_units(t: torch.Tensor, hidden: int, directions: int) -> torch.Tensor:
    """`t` (..., directions * padded) without the padded units of each direction: (..., directions * hidden)."""
    padded = _padded_size(hidden)
    if padded == hidden:
        return t
    return torch.cat([t[..., d * padded : d * padded + hidden] for d in range(directions)], dim=-1)


def bidirectional(forward: LSTM, backward: LSTM, x: torch.Tensor, lengths: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A bidirectional layer over rows of `lengths` real steps: every step's states (batch, steps, 2 * hidden),
    `forward` reading each row first to last and `backward` its real steps last to first (then its padding, in
    order), both at the positions read; and each row's final states (batch, 2 * hidden): `forward`'s at the row's
    last real position, `backward`'s at position 0 (zeros-length rows: both at position 0). One-layer LSTMs of the
    same size; only where `forward.uses_kernel(x)`."""
    if forward.num_layers != 1 or backward.num_layers != 1 or not forward.uses_kernel(x):
        raise ValueError("bidirectional() runs one-layer LSTMs on the kernel's path only")
    lengths = lengths.to(device="cpu", dtype=torch.int32).clamp(0, x.shape[1]).contiguous()
    final_steps = (lengths - 1).clamp(min=0)  # both directions have read the row's real steps after this one
    out, _, final = _LSTMLayer.apply(x.contiguous(), lengths, final_steps, None, None, *_weights(forward, 0),
                                     *_weights(backward, 0))
    hidden = forward.hidden_size
    return _real_units(out, hidden, 2), _real_units(final, hidden, 2)


class LSTM(nn.LSTM):
    """`nn.LSTM(batch_first=True)` (unidirectional) whose recurrence runs in textrnn's kernel on the CPU."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0, **_):
        super().__init__(input_size, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout)

    def uses_kernel(self, x) -> bool:
        return (not isinstance(x, nn.utils.rnn.PackedSequence) and x.device.type == "cpu"
                and x.dtype == torch.float32 and x.dim() == 3 and x.shape[1] > 0
                and not torch.is_autocast_enabled("cpu") and not torch.jit.is_tracing()
                and not torch.compiler.is_compiling() and kernel() is not None)

    def forward(self, x, hx=None):
        if not self.uses_kernel(x) or (hx is not None and hx[0].dtype != torch.float32):
            return super().forward(x, hx)
        finals, cells = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                x = nn.functional.dropout(x, self.dropout, training=True)
            h0, c0 = (None, None) if hx is None else (hx[0][layer], hx[1][layer])
            extra = _padded_size(self.hidden_size) - self.hidden_size
            if hx is not None:  # the padded units start from zeros too
                h0, c0 = (nn.functional.pad(t, (0, extra)) if extra else t.contiguous() for t in (h0, c0))
            last_step = torch.full((x.shape[0],), x.shape[1] - 1, dtype=torch.int32)
            x, cell, final = _LSTMLayer.apply(x.contiguous(), None, last_step, h0, c0, *_weights(self, layer))
            x, cell, final = (_real_units(t, self.hidden_size, 1) for t in (x, cell, final))
            finals.append(final)
            cells.append(cell)
        return x, (torch.stack(finals), torch.stack(cells))
