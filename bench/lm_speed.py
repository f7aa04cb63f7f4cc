"""Language-model training speed: textrnn's loop against a plain PyTorch program of the same shape, side by side.

    python bench/lm_speed.py                 # about 4 minutes on 2 cores
    python bench/lm_speed.py --windows 30    # shorter

Shape (the language-model issue's): a 20,000-word vocabulary, 128-d embedding, one LSTM layer of 256 units,
batches of 32 rows x 70 steps, Adam, on a stream of IMDB training reviews. The plain program is what a PyTorch
user writes: nn.Embedding -> nn.LSTM -> nn.Linear with cross-entropy (full softmax), or with
nn.AdaptiveLogSoftmaxWithLoss; hidden state carried and detached per window; no dropout. textrnn runs its own
loop (`training.lm_loop.fit_language_model`) with its defaults for that vocabulary (adaptive softmax, AWD-LSTM's
dropouts, variable windows, clipping), in fp32 and in bf16. Each side trains the same number of windows twice,
interleaved, after a warm-up of 3 windows; the better run of each is kept (tokens/s of training alone).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VOCAB, EMBED, HIDDEN, BATCH, BPTT = 20_000, 128, 256, 32, 70


class PlainLM(nn.Module):
    def __init__(self, adaptive: bool):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.adaptive = adaptive
        self.out = (nn.AdaptiveLogSoftmaxWithLoss(HIDDEN, VOCAB, [2_000, 10_000], div_value=4.0) if adaptive
                    else nn.Linear(HIDDEN, VOCAB))

    def loss(self, x, y, state):
        h, state = self.lstm(self.embedding(x), state)
        flat = h.reshape(-1, HIDDEN)
        if self.adaptive:
            return self.out(flat, y.reshape(-1)).loss, state
        return nn.functional.cross_entropy(self.out(flat), y.reshape(-1)), state


def plain_run(rows: torch.Tensor, windows: int, adaptive: bool) -> float:
    torch.manual_seed(0)
    model = PlainLM(adaptive)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    state, tokens, start = None, 0, None
    for i in range(windows + 3):
        if i == 3:
            start, tokens = time.perf_counter(), 0
        s = (i * BPTT) % (rows.shape[1] - BPTT - 1)
        x, y = rows[:, s : s + BPTT], rows[:, s + 1 : s + 1 + BPTT]
        if state is not None:
            state = tuple(t.detach() for t in state)
        loss, state = model.loss(x, y, state)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tokens += y.numel()
    return tokens / (time.perf_counter() - start)


def textrnn_run(stream: np.ndarray, windows: int, precision: str) -> float:
    from textrnn.models.language_model import LMConfig, RNNLanguageModel
    from textrnn.training.lm_loop import LMTrainConfig, fit_language_model

    torch.manual_seed(0)
    model = RNNLanguageModel(LMConfig(vocab_size=VOCAB, embedding_dim=EMBED, hidden_size=HIDDEN, layers=1,
                                      tie_weights=False, softmax="adaptive"))
    config = LMTrainConfig(batch_size=BATCH, bptt=BPTT, epochs=1, early_stopping=None, precision=precision)
    fit_language_model(model, stream[: BATCH * (3 * BPTT + 2)], None, config, progress=False)  # warm-up
    history = fit_language_model(model, stream[: BATCH * (windows * BPTT + 2)], None, config, progress=False)
    return history[0]["tokens_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=60, help="timed windows per run (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from textrnn import load_dataset
    from textrnn.text import make_vectorizer
    from textrnn.training.lm_loop import token_stream

    texts = load_dataset("imdb", DATA / "imdb").train.texts()[:6000]
    vectorizer = make_vectorizer("word", VOCAB).adapt(texts)
    stream = token_stream(*vectorizer.encode_flat(texts))
    rows = torch.from_numpy(stream[: (len(stream) // BATCH) * BATCH].reshape(BATCH, -1).copy())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(stream):,} tokens; "
          f"{args.windows} windows of {BATCH} x {BPTT} per run")
    sides = {"plain PyTorch, full softmax": lambda: plain_run(rows, args.windows, False),
             "plain PyTorch, adaptive softmax": lambda: plain_run(rows, args.windows, True),
             "textrnn lm, fp32": lambda: textrnn_run(stream, args.windows, "fp32"),
             "textrnn lm, bf16": lambda: textrnn_run(stream, args.windows, "bf16")}
    results = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, run in sides.items():
            results[name].append(run())
            print(f"  {name}: {results[name][-1]:,.0f} tokens/s", flush=True)
    base = max(results["plain PyTorch, full softmax"])
    print("\n| program | tokens/s (best of runs) | x plain full softmax |\n| --- | --- | --- |")
    for name, values in results.items():
        print(f"| {name} | {max(values):,.0f} | {max(values) / base:.2f} |")


if __name__ == "__main__":
    main()
