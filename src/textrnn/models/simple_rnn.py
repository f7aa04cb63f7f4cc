"""A SimpleRNN (tanh) layer with a compiled recurrence on the CPU (`simple_rnn_kernel.cpp`).

PyTorch has no fused CPU kernel for `nn.RNN`: its C++ loop records three or four autograd nodes per time step,
and with the lesson's 16 hidden units those nodes, not the arithmetic, are the cost. `SimpleRNN` computes the
same thing as `nn.RNN(nonlinearity="tanh", batch_first=True)` with one autograd node per layer:

    forward   xw = x W_ih^T + b_ih + b_hh                      (PyTorch: one matmul for all steps)
              h_t = tanh(xw_t + h_{t-1} W_hh^T)                  (the kernel, every step in one call)
    backward  a_t = (g_t + d_t) * (1 - h_t^2),  d_{t-1} = a_t W_hh   (the kernel)
              dW_hh and db (against each step's starting state and a column of ones), dW_ih, dx
                                                                 (PyTorch: three matmuls)

Without a compiler (or with `TEXTRNN_RNN_KERNEL=0`) the same steps run as PyTorch operators, two or three a
step, still one autograd node for the whole sequence. The kernel's tanh is a polynomial (Cephes' tanhf), within
2e-7 of PyTorch's. It subclasses `nn.RNN`, so parameters, state dicts and the CUDA path (cuDNN) are nn.RNN's own.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import torch
from torch import nn

from .. import native

SOURCE = Path(__file__).with_name("simple_rnn_kernel.cpp")
ABI = 2  # simple_rnn_kernel.cpp's textrnn_rnn_abi(): the argument lists below are for this version of the source
ENABLED_ENV = "TEXTRNN_RNN_KERNEL"  # "0": the recurrence runs as PyTorch operators


_P, _I = ctypes.c_void_p, ctypes.c_int
SIGNATURES = {"textrnn_rnn_forward": ([_I] * 3 + [_P] * 3 + [_I], None),
              "textrnn_rnn_backward": ([_I] * 3 + [_P] * 4 + [_I], None)}


@cache
def kernel() -> ctypes.CDLL | None:
    """The compiled recurrence, building it if this machine has not yet; None where it cannot be had."""
    return native.load(SOURCE, "textrnn_rnn_abi", ABI, ENABLED_ENV, SIGNATURES)


class _CompiledLayer(torch.autograd.Function):
    """One layer (batch_first, float32, CPU) from a zero initial state: every step's state (batch, steps, hidden)."""

    @staticmethod
    def forward(ctx, x, weight_ih, weight_hh, bias_ih, bias_hh):
        batch, steps, _ = x.shape
        hidden = weight_hh.shape[0]
        # (batch, steps, hidden): becomes every step's state in place
        out = torch.addmm(bias_ih + bias_hh, x.reshape(batch * steps, -1), weight_ih.t()).view(batch, steps, hidden)
        # each step's starting state and a 1, for the backward's weight gradients; inference needs none
        before = x.new_empty(batch, steps, hidden + 1) if any(ctx.needs_input_grad) else None
        w_t = weight_hh.detach().t().contiguous()
        kernel().textrnn_rnn_forward(steps, batch, hidden, w_t.data_ptr(), out.data_ptr(),
                                     None if before is None else before.data_ptr(), torch.get_num_threads())
        ctx.save_for_backward(x, weight_ih, weight_hh, out, before)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight_ih, weight_hh, out, before = ctx.saved_tensors
        batch, steps, hidden = out.shape
        grad_out = grad_out.contiguous()
        pre = torch.empty_like(out)  # the gradient at each step's pre-activation
        w = weight_hh.detach().contiguous()
        kernel().textrnn_rnn_backward(steps, batch, hidden, w.data_ptr(), out.data_ptr(), grad_out.data_ptr(),
                                      pre.data_ptr(), torch.get_num_threads())
        by_row = pre.view(batch * steps, hidden)
        # against each step's starting state: dW_hh; against the column of ones: the bias's gradient
        both = by_row.t() @ before.view(batch * steps, hidden + 1)
        grad_weight_hh, grad_bias = both[:, :hidden], both[:, hidden].contiguous()
        grad_x = (by_row @ weight_ih).view_as(x) if ctx.needs_input_grad[0] else None
        grad_weight_ih = by_row.t() @ x.reshape(batch * steps, -1)
        return grad_x, grad_weight_ih, grad_weight_hh, grad_bias, grad_bias


class _SimpleRNNLayer(torch.autograd.Function):
    """The same layer as PyTorch operators (no compiler, or another dtype), steps in (steps, batch) order."""

    @staticmethod
    def forward(ctx, x, weight_ih, weight_hh, bias_ih, bias_hh):
        batch, steps, _ = x.shape
        hidden = weight_hh.shape[0]
        xw = torch.addmm(bias_ih + bias_hh, x.reshape(batch * steps, -1), weight_ih.t())
        xw = xw.view(batch, steps, hidden).transpose(0, 1).contiguous()  # (steps, batch, hidden)
        out = torch.empty_like(xw)
        # one call makes every step's view: per-step indexing is a dispatcher call each, and steps are few
        xs, outs = xw.unbind(0), out.unbind(0)
        torch.tanh(xs[0], out=outs[0])  # h_0 = 0: the first step has no recurrent term
        recurrent = weight_hh.t()
        for t in range(1, steps):
            torch.addmm(xs[t], outs[t - 1], recurrent, out=outs[t]).tanh_()
        ctx.save_for_backward(x, weight_ih, weight_hh, out)
        return out.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight_ih, weight_hh, out = ctx.saved_tensors
        steps, batch, hidden = out.shape
        grads = grad_out.transpose(0, 1).unbind(0)
        # tanh' = 1 - h^2 for every step at once; a plain mul per step then costs a quarter of what a call
        # through torch.ops (aten.tanh_backward) does
        slopes = torch.addcmul(torch.ones_like(out), out, out, value=-1.0).unbind(0)
        pre = torch.empty_like(out)  # gradient at each step's pre-activation
        pres = pre.unbind(0)
        incoming = grads[steps - 1]  # the gradient reaching h_t: from the output and from step t + 1
        for t in range(steps - 1, -1, -1):
            torch.mul(incoming, slopes[t], out=pres[t])
            if t:
                incoming = torch.addmm(grads[t - 1], pres[t], weight_hh)
        # h_{t-1} W_hh^T fed step t for t >= 1 (h_0 = 0 fed nothing)
        grad_weight_hh = pre[1:].reshape(-1, hidden).t() @ out[:-1].reshape(-1, hidden)
        grad_bias = pre.view(steps * batch, hidden).sum(0)
        pre_bt = pre.transpose(0, 1).reshape(batch * steps, hidden)  # back to (batch, steps) order, as x
        grad_x = (pre_bt @ weight_ih).view_as(x)
        grad_weight_ih = pre_bt.t() @ x.reshape(batch * steps, -1)
        return grad_x, grad_weight_ih, grad_weight_hh, grad_bias, grad_bias


class SimpleRNN(nn.RNN):
    """`nn.RNN(nonlinearity="tanh", batch_first=True)` whose recurrence runs in textrnn's kernel on the CPU."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0, **_):
        super().__init__(input_size, hidden_size, num_layers=num_layers, nonlinearity="tanh", batch_first=True,
                         dropout=dropout)

    def uses_kernel(self, x: torch.Tensor) -> bool:
        """Whether the compiled recurrence runs `x` (else the same steps as PyTorch operators, or nn.RNN's)."""
        return (x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[1] > 0
                and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()
                and kernel() is not None)

    def forward(self, x, hx=None):
        # nn.RNN's own path on CUDA (cuDNN), and when traced for export: its loop unrolls at trace time, the
        # fused RNN op does not
        if x.is_cuda or hx is not None or isinstance(x, nn.utils.rnn.PackedSequence) or torch.jit.is_tracing():
            return super().forward(x, hx)
        layer_function = _CompiledLayer if self.uses_kernel(x) else _SimpleRNNLayer
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                x = nn.functional.dropout(x, self.dropout, training=True)
            weights = [getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            x = layer_function.apply(x.contiguous(), *weights)
            finals.append(x[:, -1])
        return x, finals[0][None] if len(finals) == 1 else torch.stack(finals)  # one layer: a view, no copy
