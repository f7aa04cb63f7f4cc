"""A SimpleRNN (tanh) layer whose backward pass is written out, for the CPU.

PyTorch has no fused CPU kernel for `nn.RNN`: its C++ loop records three or four autograd nodes per time step,
and with the lesson's 16 hidden units those nodes, not the arithmetic, are the cost. `SimpleRNN` computes the
same thing as `nn.RNN(nonlinearity="tanh", batch_first=True)` with one autograd node for the whole sequence:

    forward   xw = x W_ih^T + b_ih + b_hh              (one matmul for all steps)
              h_t = tanh(xw_t + h_{t-1} W_hh^T)         (two ops per step, no autograd)
    backward  a_t = (g_t + d_t) * (1 - h_t^2),  d_{t-1} = a_t W_hh   (two ops per step, 1 - h^2 once)
              dW_hh = sum_t a_t^T h_{t-1},  dW_ih = sum_t a_t^T x_t,  db = sum_t a_t   (three matmuls/sums)

It subclasses `nn.RNN`, so parameters, state dicts and the CUDA path (cuDNN) are nn.RNN's own.
"""

from __future__ import annotations

import torch
from torch import nn


class _SimpleRNNLayer(torch.autograd.Function):
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
    """`nn.RNN(nonlinearity="tanh", batch_first=True)` with a hand-written backward pass on the CPU."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0, **_):
        super().__init__(input_size, hidden_size, num_layers=num_layers, nonlinearity="tanh", batch_first=True,
                         dropout=dropout)

    def forward(self, x, hx=None):
        # nn.RNN's own path on CUDA (cuDNN), and when traced for export: its loop unrolls at trace time, the
        # fused RNN op does not
        if x.is_cuda or hx is not None or isinstance(x, nn.utils.rnn.PackedSequence) or torch.jit.is_tracing():
            return super().forward(x, hx)
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                x = nn.functional.dropout(x, self.dropout, training=True)
            x = _SimpleRNNLayer.apply(x, getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}"),
                                      getattr(self, f"bias_ih_l{layer}"), getattr(self, f"bias_hh_l{layer}"))
            finals.append(x[:, -1])
        return x, torch.stack(finals)
