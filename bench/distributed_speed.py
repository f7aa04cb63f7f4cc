"""Data-parallel training on one machine: 1 process x 2 threads against 2 processes x 1 thread (torchrun, gloo).

    python bench/distributed_speed.py               # about 4 minutes on 2 cores
    python bench/distributed_speed.py --repeats 1

Both sides run `textrnn train` on ag_news_mini (6,000 texts) with the default BiLSTM for 2 epochs and the same
global batch (one process with batch 2B, two with B each: the same samples per step, the same weights up to
float rounding); the figure is epoch 2's training samples/s (after a warm-up epoch, training alone, validation
excluded), the better of `--repeats` interleaved runs. The communication volume per step is computed from the
model and the data: DDP all-reduces every dense gradient (fp32) every step, and the embedding's sparse gradient
(the rows the batch touched, with their indices) through gloo's sparse all-reduce, which gathers every rank's
rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ag_news_mini"


def train(global_batch: int, nproc: int, threads: int, out: Path) -> float:
    """Epoch 2's training samples/s of one `textrnn train` run."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "textrnn", "-q", "train", "--data-dir", str(DATA), "--epochs", "2",
               "--batch-size", str(global_batch // nproc), "--no-checkpoints", "--out", str(out)]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    subprocess.run(command, check=True, env=env, capture_output=True, text=True)
    return json.loads((out / "trainer_state.json").read_text())["history"][-1]["samples_per_s"]


def communication(global_batch: int, nproc: int) -> dict[str, float]:
    """Bytes each rank sends into the all-reduces of one step, from the default BiLSTM and ag_news_mini."""
    import torch

    from textrnn import TextClassifier, load_ag_news
    from textrnn.data import TokenizedCorpus
    from textrnn.data.batching import epoch_batches, part_of
    from textrnn.text import make_vectorizer

    data = load_ag_news(DATA)
    texts = data.train.texts()
    clf = TextClassifier()
    model = clf.build(4)
    dense = sum(p.numel() for n, p in model.named_parameters() if "embedding" not in n)
    dim = model.config.embedding_dim
    vectorizer = make_vectorizer("word", clf.max_tokens)
    ids, lengths = vectorizer.adapt(texts).encode_flat(texts)
    corpus = TokenizedCorpus.from_flat(ids, lengths)
    rows = []
    for batch in epoch_batches(corpus, global_batch, "bucket", np.random.default_rng(0)):
        part = part_of(batch, (0, nproc))
        tokens, _ = corpus.batch(part)
        rows.append(len(torch.unique(tokens)))
    sparse = float(np.mean(rows)) * (dim * 4 + 8)  # fp32 values and an int64 index per row
    return {"dense_bytes": dense * 4, "sparse_bytes": sparse, "rows": float(np.mean(rows)),
            "embedding_weights": model.config.vocab_size * dim, "dense_weights": dense}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256], help="global batch sizes")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    sides = [("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1)]
    best: dict[tuple[int, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for batch in args.batches:
                for name, nproc, threads in sides if repeat % 2 == 0 else sides[::-1]:
                    speed = train(batch, nproc, threads, Path(tmp) / f"{batch}-{nproc}")
                    best[batch, name] = max(best.get((batch, name), 0.0), speed)
                    print(f"  run {repeat + 1}: batch {batch}, {name}: {speed:,.0f} samples/s", file=sys.stderr)
    print(f"\nthis machine: {cores} cores; ag_news_mini, the default BiLSTM, epoch 2 of 2, best of {args.repeats}\n")
    print(f"{'global batch':>12}  {sides[0][0]:>22}  {sides[1][0]:>22}  {'ratio':>6}  "
          f"{'all-reduced per step (dense + sparse)':>40}")
    for batch in args.batches:
        one, two = best[batch, sides[0][0]], best[batch, sides[1][0]]
        c = communication(batch, 2)
        volume = (f"{c['dense_bytes'] / 1e3:,.0f} kB + {c['sparse_bytes'] / 1e3:,.0f} kB "
                  f"({c['rows']:,.0f} rows/rank)")
        print(f"{batch:>12}  {one:>16,.0f} s/s  {two:>16,.0f} s/s  {two / one:>5.2f}x  {volume:>40}")
    c = communication(args.batches[0], 2)
    print(f"\nweights: {c['dense_weights']:,} dense, {c['embedding_weights']:,} in the embedding "
          f"(a dense all-reduce of the embedding would move {c['embedding_weights'] * 4 / 1e6:,.1f} MB a step)")


if __name__ == "__main__":
    main()
