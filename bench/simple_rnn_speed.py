"""textrnn's SimpleRNN layer against PyTorch's `nn.RNN` with autograd, forward and backward, on the CPU.

    python bench/simple_rnn_speed.py                 # the lesson's shapes: 64-d inputs, 16 units, batch 16
    python bench/simple_rnn_speed.py --threads 1

`textrnn.models.simple_rnn.SimpleRNN` replaces `nn.RNN(nonlinearity="tanh")` on the CPU because PyTorch's C++
loop records autograd nodes per time step. Three sides get the same weights and the same input: nn.RNN, the
layer's recurrence as PyTorch operators (one autograd node, two or three operators a step: what runs without a
compiler) and its compiled recurrence (simple_rnn_kernel.cpp, the default). Each timed repetition runs forward,
a sum and backward `--calls` times; the sides alternate, repetition by repetition, after a warm-up, and the
median repetition of each is reported with the ratios nn.RNN / each. The gradients are compared first (float32,
so to rounding: the largest difference from nn.RNN's of either side).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from textrnn.models.simple_rnn import SimpleRNN, kernel

SHAPES = [(7, 16), (40, 16), (200, 16), (40, 64)]  # (steps, batch): AG News titles, descriptions, IMDB-ish, batch 64


class OperatorsOnly(SimpleRNN):
    """The layer with its recurrence as PyTorch operators, as it runs where the kernel cannot be built."""

    def uses_kernel(self, x) -> bool:
        return False


def time_one(rnn, x, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        x.grad = None
        out, _ = rnn(x)
        out.sum().backward()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=16)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sides = {"nn.RNN": torch.nn.RNN(args.input_size, args.hidden_size, nonlinearity="tanh", batch_first=True),
             "operators": OperatorsOnly(args.input_size, args.hidden_size),
             "compiled": SimpleRNN(args.input_size, args.hidden_size)}
    for rnn in sides.values():
        rnn.load_state_dict(sides["nn.RNN"].state_dict())
    if kernel() is None:
        raise SystemExit("the SimpleRNN kernel could not be built here (no g++?): nothing to compare")
    print(f"{torch.get_num_threads()} thread(s); input {args.input_size}, {args.hidden_size} units; "
          f"median of {args.repeats} repetitions of {args.calls} forward+backward calls")
    print(f"{'steps':>5} {'batch':>5} {'nn.RNN ms':>10} {'operators ms':>13} {'ratio':>6} {'compiled ms':>12} "
          f"{'ratio':>6} {'max |grad diff|':>16}")
    for steps, batch in SHAPES:
        x = torch.randn(batch, steps, args.input_size, requires_grad=True)
        grads = []
        for rnn in sides.values():
            rnn.zero_grad()
            time_one(rnn, x, 1)
            grads.append([x.grad.clone()] + [p.grad.clone() for p in rnn.parameters()])
        diff = max(float((a - b).abs().max()) for other in grads[1:] for a, b in zip(grads[0], other))
        times = {name: [] for name in sides}
        for _ in range(2):  # warm-up
            for rnn in sides.values():
                time_one(rnn, x, args.calls // 4)
        for _ in range(args.repeats):
            for name, rnn in sides.items():
                times[name].append(time_one(rnn, x, args.calls))
        base, plain, compiled = (statistics.median(times[name]) for name in sides)
        print(f"{steps:>5} {batch:>5} {base * 1e3:>10.3f} {plain * 1e3:>13.3f} {base / plain:>5.2f}x "
              f"{compiled * 1e3:>12.3f} {base / compiled:>5.2f}x {diff:>16.2e}")


if __name__ == "__main__":
    main()
