"""Is PyTorch's oneDNN LSTM the fastest way to train the BiLSTM's layers on a CPU? Against a written-out LSTM.

    python bench/lstm_kernel.py                  # batches 16-256, 37 steps (ag_news_mini's mean length), 128 -> 64
    python bench/lstm_kernel.py --batches 256 --steps 100

The lesson's BiLSTM spends 68 % (batch 16) to 84 % (batch 256) of a training step inside oneDNN's LSTM
(`aten::mkldnn_rnn_layer` and its backward, `torch.profiler`), and at batch 256 its fp32 backward takes three times
its no-grad forward (below). The written-out layer is the scheme `textrnn.models.simple_rnn` uses for SimpleRNN,
for an LSTM: one matmul for every step's input projection, then per step an `addmm` and the gate arithmetic in
place, with no autograd nodes; its backward runs five ops a step on factors computed for every step at once,
then three large matmuls for the weight and input gradients. Both sides run forward + backward of one layer and
direction on the same weights and input, interleaved, best of `--repeats`; their outputs and gradients are
compared first.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn


class WrittenOutLSTM(torch.autograd.Function):
    """`nn.LSTM(batch_first=True)`'s single layer and direction, zero initial state, one autograd node."""

    @staticmethod
    def forward(ctx, x, weight_ih, weight_hh, bias_ih, bias_hh):
        batch, steps, _ = x.shape
        hidden = weight_hh.shape[1]
        gates = torch.addmm(bias_ih + bias_hh, x.reshape(batch * steps, -1), weight_ih.t())
        gates = gates.view(batch, steps, 4 * hidden).transpose(0, 1).contiguous()  # (steps, batch, 4 hidden)
        cell, tanh_cell, out = (x.new_empty(steps, batch, hidden) for _ in range(3))
        gs, cs, tcs, hs = gates.unbind(0), cell.unbind(0), tanh_cell.unbind(0), out.unbind(0)
        h = hidden
        for t in range(steps):
            g = gs[t]
            if t:
                g.addmm_(hs[t - 1], weight_hh.t())
            g[:, : 2 * h].sigmoid_()  # PyTorch's gate order: input, forget, cell, output
            g[:, 2 * h : 3 * h].tanh_()
            g[:, 3 * h :].sigmoid_()
            if t:
                torch.mul(g[:, h : 2 * h], cs[t - 1], out=cs[t])
                cs[t].addcmul_(g[:, :h], g[:, 2 * h : 3 * h])
            else:
                torch.mul(g[:, :h], g[:, 2 * h : 3 * h], out=cs[t])
            torch.tanh(cs[t], out=tcs[t])
            torch.mul(g[:, 3 * h :], tcs[t], out=hs[t])
        ctx.save_for_backward(x, weight_ih, weight_hh, gates, cell, tanh_cell, out)
        return out.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight_ih, weight_hh, gates, cell, tanh_cell, out = ctx.saved_tensors
        steps, batch, four_h = gates.shape
        h = four_h // 4
        i, f, g, o = gates.split(h, dim=2)
        # what each step's gradients are multiplied by, for every step at once
        to_o = tanh_cell * o * (1 - o)  # d pre-activation of o = dh * to_o
        to_c = o * (1 - tanh_cell * tanh_cell)  # dc += dh * to_c
        prev_cell = torch.cat([torch.zeros_like(cell[:1]), cell[:-1]])
        to_ifg = torch.stack([g * i * (1 - i), prev_cell * f * (1 - f), i * (1 - g * g)], dim=2)
        dgates = torch.empty_like(gates)
        dgs, grads = dgates.unbind(0), grad_out.transpose(0, 1).unbind(0)
        tos, tcs, tifg, fs = to_o.unbind(0), to_c.unbind(0), to_ifg.unbind(0), f.unbind(0)
        dh, dc = grads[steps - 1], None
        for t in range(steps - 1, -1, -1):
            d = dgs[t]
            torch.mul(dh, tos[t], out=d[:, 3 * h :])
            dc = dh * tcs[t] if dc is None else torch.addcmul(dc, dh, tcs[t])
            torch.mul(dc.unsqueeze(1), tifg[t], out=d[:, : 3 * h].view(batch, 3, h))
            if t:
                dc = dc * fs[t]
                dh = torch.addmm(grads[t - 1], d, weight_hh)
        grad_weight_hh = dgates[1:].reshape(-1, four_h).t() @ out[:-1].reshape(-1, h)
        grad_bias = dgates.view(-1, four_h).sum(0)
        by_row = dgates.transpose(0, 1).reshape(batch * steps, four_h)
        grad_x = (by_row @ weight_ih).view_as(x)
        grad_weight_ih = by_row.t() @ x.reshape(batch * steps, -1)
        return grad_x, grad_weight_ih, grad_weight_hh, grad_bias, grad_bias


def written_out(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    return WrittenOutLSTM.apply(x, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)


def largest_difference(lstm: nn.LSTM) -> float:
    """The largest difference between the two sides' outputs and gradients, on a small batch."""
    x = torch.randn(8, 13, lstm.input_size, requires_grad=True)
    reference, _ = lstm(x)
    weights = torch.randn_like(reference)
    inputs = [x, *lstm.parameters()]
    expected = torch.autograd.grad((reference * weights).sum(), inputs)
    mine = written_out(lstm, x)
    got = torch.autograd.grad((mine * weights).sum(), inputs)
    return max([(mine - reference).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(expected, got)])


def milliseconds(step, repeats: int, calls: int = 20) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        best = min(best, (time.perf_counter() - start) / calls * 1e3)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--steps", type=int, default=37)
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    lstm = nn.LSTM(args.input, args.hidden, batch_first=True)
    print(f"{torch.get_num_threads()} threads; largest output/gradient difference: {largest_difference(lstm):.1e}")
    print(f"{'batch':>5}  {'oneDNN fwd+bwd ms':>17}  {'written-out ms':>14}  {'oneDNN fwd ms':>13}  "
          f"{'written-out fwd ms':>18}  {'speed vs oneDNN':>15}")
    for batch in args.batches:
        x = torch.randn(batch, args.steps, args.input, requires_grad=True)

        def onednn():
            lstm(x)[0].sum().backward()

        def mine():
            written_out(lstm, x).sum().backward()

        def onednn_forward():
            with torch.no_grad():
                lstm(x)

        def mine_forward():
            with torch.no_grad():
                written_out(lstm, x)

        steps = (onednn, mine, onednn_forward, mine_forward)
        for step in steps:  # warm up the kernels and the allocator
            milliseconds(step, 1, 3)
        times = {step.__name__: float("inf") for step in steps}
        for _ in range(args.repeats):  # interleaved: the machine drifts
            for step in steps:
                times[step.__name__] = min(times[step.__name__], milliseconds(step, 1))
        print(f"{batch:>5}  {times['onednn']:>17.2f}  {times['mine']:>14.2f}  {times['onednn_forward']:>13.2f}  "
              f"{times['mine_forward']:>18.2f}  {times['onednn'] / times['mine']:>14.2f}x")


if __name__ == "__main__":
    main()
