"""textrnn's compiled LSTM recurrence against PyTorch's oneDNN LSTM: one layer's training step (forward + backward).

    python bench/lstm_kernel.py                  # the BiLSTM's layer at batches 16-256, 37 steps; the LM's layer
    python bench/lstm_kernel.py --batches 256 --steps 100

Two shapes of work, each on the same weights and input on both sides, interleaved, best of `--repeats`:

* one direction: `nn.LSTM(batch_first=True)` against `textrnn.models.fast_lstm.LSTM` (the kernel);
* a bidirectional layer as the encoder runs it on masked rows: oneDNN's two directions, the backward one on rows
  reversed within their lengths and its outputs put back (two gathers each way), against the kernel's
  `bidirectional`, both directions in one call reading the backward one in its order itself.

Outputs and gradients are compared first (the largest difference, relative to the largest value of the same
output or gradient, is printed). The kernel's numbers include
PyTorch's matmuls around it (the input projection, the weight and input gradients), as a training step does.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from textrnn.models.fast_lstm import LSTM, bidirectional, kernel


def milliseconds(step, repeats: int, calls: int = 10) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        best = min(best, (time.perf_counter() - start) / calls * 1e3)
    return best


def reversed_within(t: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(t.shape[1])[None, :]
    order = torch.where(positions < lengths[:, None], (lengths[:, None] - 1) - positions, positions)
    return t.gather(1, order[:, :, None].expand_as(t))


def onednn_bidirectional(forward: nn.LSTM, backward: nn.LSTM, x, lengths):
    back = nn.LSTM.forward(backward, reversed_within(x, lengths))[0]
    return torch.cat([nn.LSTM.forward(forward, x)[0], reversed_within(back, lengths)], dim=2)


def largest_difference(a, b, inputs) -> float:
    """The largest difference between the outputs, and between each gradient, relative to the largest value."""
    weights = torch.randn_like(a)
    ga = torch.autograd.grad((a * weights).sum(), inputs)
    gb = torch.autograd.grad((b * weights).sum(), inputs)
    return max(((p - q).abs().max() / p.abs().max()).item() for p, q in zip([a, *ga], [b, *gb]))


def compare(batch: int, steps: int, width: int, hidden: int, repeats: int) -> dict:
    torch.manual_seed(0)
    forward, backward = LSTM(width, hidden), LSTM(width, hidden)
    x = torch.randn(batch, steps, width, requires_grad=True)
    lengths = torch.randint(max(1, steps // 2), steps + 1, (batch,))
    lengths[0] = steps
    inputs = [x, *forward.parameters(), *backward.parameters()]
    difference = max(
        largest_difference(nn.LSTM.forward(forward, x)[0], forward(x)[0], [x, *forward.parameters()]),
        largest_difference(onednn_bidirectional(forward, backward, x, lengths),
                           bidirectional(forward, backward, x, lengths), inputs))
    sides = {
        "onednn": lambda: nn.LSTM.forward(forward, x)[0].sum().backward(),
        "kernel": lambda: forward(x)[0].sum().backward(),
        "onednn_bi": lambda: onednn_bidirectional(forward, backward, x, lengths).sum().backward(),
        "kernel_bi": lambda: bidirectional(forward, backward, x, lengths).sum().backward(),
    }
    for step in sides.values():  # warm up the kernels and the allocator
        milliseconds(step, 1, 2)
    times = dict.fromkeys(sides, float("inf"))
    for _ in range(repeats):  # interleaved: the machine drifts
        for name, step in sides.items():
            times[name] = min(times[name], milliseconds(step, 1))
    return {"difference": difference, **times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="*", default=[16, 64, 256])
    parser.add_argument("--steps", type=int, default=37, help="steps per row (37: ag_news_mini's mean length)")
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-lm", action="store_true", help="leave out the language model's layer (32 x 70, "
                        "128 -> 256)")
    args = parser.parse_args()
    if kernel() is None:
        raise SystemExit("the LSTM kernel is not available here (no g++, or TEXTRNN_LSTM_KERNEL=0)")
    shapes = [(batch, args.steps, args.input, args.hidden) for batch in args.batches]
    if not args.no_lm:
        shapes.append((32, 70, 128, 256))
    print(f"{torch.get_num_threads()} threads; training step (forward + backward) of one layer, ms")
    print(f"{'batch x steps, in -> hidden':>28}  {'oneDNN':>7}  {'kernel':>7}  {'speed':>6}  "
          f"{'oneDNN bi':>9}  {'kernel bi':>9}  {'speed':>6}  {'largest rel. diff':>17}")
    for batch, steps, width, hidden in shapes:
        r = compare(batch, steps, width, hidden, args.repeats)
        shape = f"{batch} x {steps}, {width} -> {hidden}"
        print(f"{shape:>28}  {r['onednn']:>7.2f}  {r['kernel']:>7.2f}  {r['onednn'] / r['kernel']:>5.2f}x  "
              f"{r['onednn_bi']:>9.2f}  {r['kernel_bi']:>9.2f}  {r['onednn_bi'] / r['kernel_bi']:>5.2f}x  "
              f"{r['difference']:>17.1e}")


if __name__ == "__main__":
    main()
