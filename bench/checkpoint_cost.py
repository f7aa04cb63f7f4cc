"""What checkpoints cost: one training run without them, then the same run checkpointing every N steps.

    python bench/checkpoint_cost.py [--every 1000 100 20] [--epochs 2]

The lesson's BiLSTM on ag_news_mini (6,000 rows, batch 16: 375 steps an epoch), textrnn's fast path. Each
checkpoint writes the weights, Adam's two moments and the embedding's catch-up record (about 33 MB for this
model) and hashes it. Prints each run's time as a ratio against the run without checkpoints (after a warm-up
run); both runs end with identical weights (checked), since checkpointing must not change what is trained.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from textrnn import TextClassifier, load_ag_news
from textrnn.lesson.presets import get_preset

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, nargs="+", default=[1000, 100, 20])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data" / "ag_news_mini"))
    args = parser.parse_args()

    data = load_ag_news(args.data_dir)
    texts = data.train.texts("title+description")
    labels = [data.classes[i] for i in data.train.labels]
    preset = get_preset("lesson-bilstm")
    params = {**preset.params, "epochs": args.epochs, "progress": False}

    def run(checkpoint_dir=None, every=None):
        clf = TextClassifier(**params, checkpoint_dir=checkpoint_dir, checkpoint_every=every)
        start = time.perf_counter()
        clf.fit(texts, labels)
        return time.perf_counter() - start, clf.model_.state_dict()

    run()  # warm-up: the first run in a process pays one-time costs (oneDNN kernels, allocator)
    base_seconds, base_state = run()
    print(f"lesson-bilstm, {len(texts):,} rows, {args.epochs} epochs: {base_seconds:.1f} s without checkpoints")
    print("| checkpoints | checkpoints written | MB each | time | ratio | same weights |")
    print("| --- | --- | --- | --- | --- | --- |")
    for every in args.every:
        with tempfile.TemporaryDirectory() as tmp:
            written = []
            from textrnn.training import checkpoints as ck

            original = ck.Checkpointer.save

            def counting(self, *a, **kw):
                path = original(self, *a, **kw)
                written.append(sum(f.stat().st_size for f in path.iterdir()))
                return path

            ck.Checkpointer.save = counting
            try:
                seconds, state = run(Path(tmp) / "ck", every)
            finally:
                ck.Checkpointer.save = original
        same = all(torch.equal(base_state[k], state[k]) for k in base_state)
        print(f"| every epoch + every {every} steps | {len(written)} | {written[0] / 1e6:.1f} | {seconds:.1f} s | "
              f"{seconds / base_seconds:.3f} | {same} |")


if __name__ == "__main__":
    main()
