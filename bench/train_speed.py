"""Training and inference speed of textrnn against plain PyTorch (and Keras, when TensorFlow is installed).

    python bench/train_speed.py                 # everything, about 5-8 minutes on 2 cores
    python bench/train_speed.py --quick         # 2,000 rows instead of 7,600: a smoke run
    python bench/train_speed.py --json out.json
    python bench/train_speed.py --against ../old --only lesson-simple-titles   # this checkout vs another

Corpus: the 7,600 texts of ../shared/data/ag_news/test.csv.gz (the figures in the speed issue were measured on
the same rows), vocabulary adapted on the first 2,000 titles as in the lesson. For each of the lesson's models,
two epochs are trained at the lesson's batch size and at a large batch, and epoch 2 is timed (steady state:
Keras traces its graph in epoch 1, and both sides warm their kernels and allocators there), training alone, by

* textrnn: its default fast path (length-bucketed batches, lazy-Adam embedding updates);
* plain PyTorch: nn.Embedding + nn.RNN/nn.LSTM + pack_padded_sequence (masked models; unmasked ones read the
  padding, as the lesson's do) + a shuffling DataLoader that pads each batch + torch.optim.Adam;
* Keras (TensorFlow backend), when `tensorflow` imports: the lesson's own program (TextVectorization inside the
  model, raw strings batched in file order); otherwise the issue's reference figures, measured on this kind of
  machine with Keras 3.15 / TensorFlow 2.21, are printed and marked "ref".

The plain PyTorch program is timed over one epoch (within `--max-seconds`) after a warm-up of 10 batches.
Keras's epoch-1 figure (what this benchmark reported before it timed the steady state) is printed beside.
Each run happens in a fresh process, so its peak resident memory (ru_maxrss) is its own. Ratios compare runs
of this invocation, except against "ref" Keras figures. The BiLSTM's achieved FLOP/s (matmul FLOPs of forward
and backward) is reported against a large fp32 matmul measured here too.

With `--against DIR` (another textrnn checkout, an older revision say: `git worktree add ../old REV`), only
textrnn runs: this checkout's and DIR's, alternately, `--repeats` times each, at the lesson's batch size; each
pair's ratio and the median ratio are printed. The machine drifts; a pair runs back to back, so its ratio
drifts less than either figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ag_news"
LARGE_BATCH = 256

# Keras 3.15 / TF 2.21 on this machine kind, one epoch on the 7,600 AG News test rows (from the speed issue).
KERAS_REFERENCE = {"lesson-simple-titles": 2204, "lesson-simple-masked": 1294, "lesson-lstm": 680,
                   "lesson-bilstm": 235}


# -- shared setup (runs inside each worker) -----------------------------------------------------------------------
def load_corpus(rows: int):
    import torch

    # The first torch.optim optimizer a process builds imports torch._dynamo (about 1.5 s, once); pay it here,
    # outside every timed region, so that runs time training, not process start-up.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    from textrnn import Vectorizer
    from textrnn.data.datasets import read_ag_news_csv
    from textrnn.lesson.presets import PRESETS

    test = read_ag_news_csv(DATA / "test.csv.gz").take(rows)
    vectorizer = Vectorizer(20000).adapt(test.columns["title"][:2000])
    return PRESETS, test, vectorizer


def matmul_flops(preset) -> float:
    """Matmul FLOPs per token for one training step (forward + backward = 3x forward)."""
    p = preset.params
    dirs = 2 if p["bidirectional"] else 1
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[p["cell"]]
    h = p["hidden_size"]
    flops, width = 0, p["embedding_dim"]
    for _ in range(p["layers"]):
        flops += dirs * 2 * gates * h * (width + h)
        width = dirs * h
    return 3.0 * flops


def run_textrnn(name: str, batch: int, rows: int, precision: str = "fp32") -> dict:
    import numpy as np
    import torch

    from textrnn.data.batching import TokenizedCorpus
    from textrnn.estimator import TextClassifier
    from textrnn.training import TrainConfig, fit

    presets, test, vectorizer = load_corpus(rows)
    preset = presets[name]
    corpus = TokenizedCorpus.from_flat(*vectorizer.encode_flat(test.texts(preset.text_mode)))
    model = TextClassifier(**preset.params).build(4)
    config = TrainConfig(batch_size=batch, epochs=2, seed=0, precision=precision)
    history = fit(model, corpus, np.asarray(test.labels), config)
    seconds = history[-1].seconds  # epoch 2's training time (the loop times training alone)
    return {"seconds": seconds, "samples": len(corpus), "tokens": int(corpus.lengths.sum()),
            "flops_per_token": matmul_flops(preset), "threads": torch.get_num_threads()}


def run_plain_pytorch(name: str, batch: int, rows: int, max_seconds: float) -> dict:
    """The straightforward PyTorch program a practitioner would write first."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
    from torch.utils.data import DataLoader

    presets, test, vectorizer = load_corpus(rows)
    preset = presets[name]
    p = preset.params
    seqs = [torch.as_tensor(s, dtype=torch.long) for s in vectorizer.encode(test.texts(preset.text_mode))]
    items = [(s if len(s) else torch.zeros(1, dtype=torch.long), y) for s, y in zip(seqs, test.labels)]

    def collate(batch_items):
        xs, ys = zip(*batch_items)
        return pad_sequence(xs, batch_first=True), torch.tensor([len(x) for x in xs]), torch.tensor(ys)

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(20000, p["embedding_dim"])
            cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[p["cell"]]
            self.rnn = cls(p["embedding_dim"], p["hidden_size"], p["layers"], batch_first=True,
                           bidirectional=p["bidirectional"])
            self.dirs = 2 if p["bidirectional"] else 1
            self.fc = nn.Linear(self.dirs * p["hidden_size"], 4)

        def forward(self, x, lengths):
            e = self.embedding(x)
            if p["mask"]:
                e = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
            _, h = self.rnn(e)
            h = h[0] if isinstance(h, tuple) else h
            return self.fc(torch.cat(list(h[-self.dirs:]), dim=1))

    torch.manual_seed(0)
    model = Plain()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(items, batch_size=batch, shuffle=True, collate_fn=collate)
    loss_fn = nn.CrossEntropyLoss()
    samples = tokens = 0
    for step, (x, lengths, y) in enumerate(itertools.chain(itertools.islice(loader, 10), loader)):
        if step == 10:  # warmed up: time from here, one epoch
            start, samples, tokens = time.perf_counter(), 0, 0
        loss = loss_fn(model(x, lengths), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        samples += len(y)
        tokens += int(lengths.sum())
        if step >= 10 and time.perf_counter() - start > max_seconds:
            break  # slow configurations are timed on part of the epoch
    return {"seconds": time.perf_counter() - start, "samples": samples, "tokens": tokens,
            "threads": torch.get_num_threads()}


def run_keras(name: str, batch: int, rows: int, max_seconds: float) -> dict:
    """The lesson's own Keras program: TextVectorization inside the model, raw strings batched in file order
    (so each batch is padded to its longest text), Adam, sparse categorical cross-entropy, two epochs: epoch 2
    timed (steady state), epoch 1 (graph tracing included) reported beside it."""
    import numpy as np
    import tensorflow as tf
    import keras

    presets, test, _ = load_corpus(rows)
    preset = presets[name]
    p = preset.params
    texts = test.texts(preset.text_mode)
    labels = np.asarray(test.labels)
    vectorizer = keras.layers.TextVectorization(max_tokens=20000)
    vectorizer.adapt(test.columns["title"][:2000])
    layers = [vectorizer, keras.layers.Embedding(20000, p["embedding_dim"], mask_zero=p["mask"])]
    cell = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[p["cell"]]
    for i in range(p["layers"]):
        rnn = cell(p["hidden_size"], return_sequences=i < p["layers"] - 1)
        layers.append(keras.layers.Bidirectional(rnn) if p["bidirectional"] else rnn)
    layers.append(keras.layers.Dense(4, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(batch)

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    times = EpochTimes()
    model.fit(data, epochs=2, verbose=0, callbacks=[times])
    return {"seconds": times.seconds[1], "first_epoch_seconds": times.seconds[0], "samples": len(texts)}


def run_inference(name: str, rows: int) -> dict:
    import statistics


    from textrnn.estimator import TextClassifier

    presets, test, vectorizer = load_corpus(rows)
    preset = presets[name]
    clf = TextClassifier(**preset.params, progress=False)
    clf.model_, clf.vectorizer_, clf.classes_ = clf.build(4).eval(), vectorizer, ["a", "b", "c", "d"]
    texts = test.texts(preset.text_mode)
    clf.predict_proba(texts[:512])  # warm-up
    start = time.perf_counter()
    clf.predict_proba(texts)
    batched = len(texts) / (time.perf_counter() - start)
    latencies = []
    for text in texts[:300]:
        t = time.perf_counter()
        clf.predict_proba([text])
        latencies.append(time.perf_counter() - t)
    return {"texts_per_s": batched, "latency_ms_median": 1e3 * statistics.median(latencies),
            "latency_ms_p95": 1e3 * sorted(latencies)[int(0.95 * len(latencies))]}


def run_matmul_peak() -> dict:
    import torch

    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(4096, 4096, dtype=dtype)
        b = torch.randn(4096, 4096, dtype=dtype)
        for _ in range(2):
            a @ b
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            a @ b
            n += 1
        out[str(dtype).replace("torch.", "")] = 2 * 4096**3 * n / (time.perf_counter() - start)
    return out


# -- worker plumbing ----------------------------------------------------------------------------------------------
def _worker(queue, fn_name, args, src=ROOT / "src"):
    sys.path.insert(0, str(src))
    try:
        result = globals()[fn_name](*args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(result)
    except Exception as exc:  # reported, not fatal: one missing framework must not stop the benchmark
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def in_fresh_process(fn_name: str, *args, src: Path = ROOT / "src") -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(queue, fn_name, args, src))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def fastest(runs: list[dict]) -> dict:
    """The run with the highest samples/s (an error only if every run failed)."""
    good = [r for r in runs if "seconds" in r]
    return max(good, key=lambda r: r["samples"] / r["seconds"]) if good else runs[0]


def have_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None


def compare_checkouts(names: list[str], rows: int, other: Path, repeats: int) -> None:
    """Epoch-2 samples/s of this checkout's textrnn against `other`'s, run alternately in fresh processes."""
    import statistics

    from textrnn.lesson.presets import PRESETS

    print(f"this checkout ({ROOT}) against {other}, {repeats} alternating runs each, epoch 2 samples/s\n")
    for name in names:
        batch = PRESETS[name].params["batch_size"]
        ratios = []
        for _ in range(repeats):
            ours = in_fresh_process("run_textrnn", name, batch, rows)
            theirs = in_fresh_process("run_textrnn", name, batch, rows, src=other / "src")
            ours_sps, theirs_sps = (r["samples"] / r["seconds"] for r in (ours, theirs))
            ratios.append(ours_sps / theirs_sps)
            print(f"{name:<22}{batch:>6}  this {ours_sps:>9,.0f}  other {theirs_sps:>9,.0f}  ratio {ratios[-1]:.2f}",
                  flush=True)
        print(f"{name:<22}{batch:>6}  median ratio {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f})\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows: a smoke run, not for reporting")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--max-seconds", type=float, default=25.0,
                        help="time budget of one plain-PyTorch or Keras run (default: %(default)s)")
    parser.add_argument("--only", action="append", help="only this lesson model (repeatable)")
    parser.add_argument("--against", type=Path, help="another textrnn checkout: compare its training speed with "
                        "this one's, alternately (nothing else runs)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side with --against (default: 5)")
    args = parser.parse_args()
    rows = 2000 if args.quick else 7600
    sys.path.insert(0, str(ROOT / "src"))
    from textrnn.lesson.presets import PRESETS

    names = args.only or list(PRESETS)
    if args.against:
        return compare_checkouts(names, rows, args.against.resolve(), args.repeats)
    keras_live = have_tensorflow()
    peak = in_fresh_process("run_matmul_peak")
    print(f"matmul peak (4096^3, this machine, {os.cpu_count()} cores): fp32 {peak['float32'] / 1e9:,.0f} GFLOP/s, "
          f"bf16 {peak['bfloat16'] / 1e9:,.0f} GFLOP/s")
    print(f"Keras: {'measured live' if keras_live else 'TensorFlow not installed: reference figures (ref)'}\n")

    results = {"rows": rows, "matmul_peak": peak, "keras_live": keras_live, "train": [], "inference": []}
    header = (f"{'model':<22}{'batch':>6}{'textrnn s/s':>13}{'tokens/s':>11}{'peak MB':>9}"
              f"{'plain s/s':>11}{'x plain':>9}{'keras s/s':>11}{'x keras':>9}{'keras MB':>10}"
              f"{'keras ep.1':>12}{'x ep.1':>8}")
    print(header)
    print("-" * len(header))
    for name in names:
        lesson_batch = PRESETS[name].params["batch_size"]
        runs = [(lesson_batch, "fp32"), (LARGE_BATCH, "fp32")]
        if name == "lesson-bilstm":
            runs.append((LARGE_BATCH, "bf16"))  # bfloat16 autocast: AMX on this CPU
        for batch, precision in runs:
            if name == "lesson-bilstm" and batch == LARGE_BATCH:
                # the FLOP/s ratio is only as good as the peak beside it: read it again here, keep the highest
                again = in_fresh_process("run_matmul_peak")
                peak = {k: max(peak[k], again[k]) for k in peak}
                results["matmul_peak"] = peak
            # At the lesson's batch size, where the Keras target applies, textrnn and Keras each run twice,
            # interleaved, and keep their faster run: the machine's speed drifts between runs minutes apart.
            repeats = 2 if batch == lesson_batch and precision == "fp32" else 1
            ours_runs, keras_runs = [], []
            for _ in range(repeats):
                ours_runs.append(in_fresh_process("run_textrnn", name, batch, rows, precision))
                if keras_live:
                    keras_runs.append(in_fresh_process("run_keras", name, batch, rows, args.max_seconds))
            ours = fastest(ours_runs)
            plain = in_fresh_process("run_plain_pytorch", name, batch, rows, args.max_seconds)
            if keras_live:
                keras = fastest(keras_runs)
                keras_sps = keras.get("samples", 0) / keras["seconds"] if "seconds" in keras else None
                keras_first = (keras.get("samples", 0) / keras["first_epoch_seconds"]
                               if "first_epoch_seconds" in keras else None)
                keras_tag = ""
            else:
                keras, keras_first = {}, None
                keras_sps = KERAS_REFERENCE[name] if batch == lesson_batch else None
                keras_tag = " ref" if keras_sps else ""
            if "error" in ours:
                print(f"{name:<22}{batch:>6}  textrnn failed: {ours['error']}")
                continue
            sps = ours["samples"] / ours["seconds"]
            plain_sps = plain["samples"] / plain["seconds"] if "seconds" in plain else None
            row = {"model": name, "batch": batch, "precision": precision, "samples_per_s": sps,
                   "tokens_per_s": ours["tokens"] / ours["seconds"],
                   "peak_rss_mb": ours["peak_rss_mb"], "plain_samples_per_s": plain_sps,
                   "plain_peak_rss_mb": plain.get("peak_rss_mb"), "keras_samples_per_s": keras_sps,
                   "keras_reference": not keras_live, "keras_error": keras.get("error"),
                   "keras_peak_rss_mb": keras.get("peak_rss_mb"), "keras_first_epoch_samples_per_s": keras_first,
                   "flops_per_token": ours["flops_per_token"]}
            row["achieved_gflops"] = row["tokens_per_s"] * ours["flops_per_token"] / 1e9
            results["train"].append(row)
            fmt = lambda v, spec: format(v, spec) if v else "—"  # noqa: E731
            label = name if precision == "fp32" else f"{name} bf16"
            print(f"{label:<22}{batch:>6}{sps:>13,.0f}{row['tokens_per_s']:>11,.0f}{ours['peak_rss_mb']:>9,.0f}"
                  f"{fmt(plain_sps, ',.0f'):>11}{fmt(plain_sps and sps / plain_sps, '.1f'):>9}"
                  f"{fmt(keras_sps, ',.0f') + keras_tag:>11}{fmt(keras_sps and sps / keras_sps, '.1f'):>9}"
                  f"{fmt(keras.get('peak_rss_mb'), ',.0f'):>10}{fmt(keras_first, ',.0f'):>12}"
                  f"{fmt(keras_first and sps / keras_first, '.1f'):>8}", flush=True)

    print()
    for r in results["train"]:
        if r["model"] == "lesson-bilstm" and r["batch"] == LARGE_BATCH:
            print(f"BiLSTM at batch {LARGE_BATCH}, {r['precision']}: {r['achieved_gflops']:,.1f} GFLOP/s of matmul "
                  f"work against a peak of {peak['float32'] / 1e9:,.0f} (fp32) / {peak['bfloat16'] / 1e9:,.0f} (bf16) "
                  f"GFLOP/s, the highest reading of the run: "
                  f"{100 * r['achieved_gflops'] * 1e9 / peak['float32']:.0f}% of the fp32 matmul peak "
                  f"({100 * r['achieved_gflops'] * 1e9 / peak['bfloat16']:.0f}% of bf16)")

    print(f"\n{'inference':<22}{'batched texts/s':>16}{'latency ms (median)':>21}{'p95':>8}")
    for name in names:
        inf = in_fresh_process("run_inference", name, rows)
        if "error" in inf:
            print(f"{name:<22}  failed: {inf['error']}")
            continue
        results["inference"].append({"model": name, **inf})
        print(f"{name:<22}{inf['texts_per_s']:>16,.0f}{inf['latency_ms_median']:>21.2f}{inf['latency_ms_p95']:>8.2f}",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
