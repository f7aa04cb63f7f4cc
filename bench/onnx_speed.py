"""PyTorch against onnxruntime (fp32 and int8) for the default BiLSTM: throughput, single-text latency, file
sizes and accuracy, side by side in one run.

    python bench/onnx_speed.py            # about 1 minute on 2 cores

The default model (`textrnn train` with no flags: a 1-layer masked BiLSTM, 128-d embedding, 64 units) is
trained for 2 epochs on ag_news_mini and on sst2, exported with `--quantize int8`, and each runtime labels the
test texts: batched (the whole file, each runtime's own batching), then one text at a time (300 texts).
PyTorch's own dynamic int8 quantization (torch.ao, nn.LSTM and nn.Linear) is measured beside onnxruntime's,
and so is PyTorch run as the onnxruntime path runs on the CPU, one batch of 32 per core on one thread each
("pytorch 1/core"), to show how much of the gain that scheme alone gives. Every runtime is warmed up, then the
batched runs are interleaved (each round times every runtime once) and the best of 5 rounds is kept.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def throughputs(predicts: dict, texts, rounds=5) -> dict[str, float]:
    """Batched texts/s of each runtime, best of `rounds` interleaved rounds."""
    for predict in predicts.values():
        predict(texts[:256])  # warm-up
    best = dict.fromkeys(predicts, 0.0)
    for _ in range(rounds):
        for name, predict in predicts.items():
            start = time.perf_counter()
            predict(texts)
            best[name] = max(best[name], len(texts) / (time.perf_counter() - start))
    return best


def latency(predict, texts) -> tuple[float, float]:
    """Median and p95 single-text latency in ms over the first 300 texts."""
    latencies = []
    for text in texts[:300]:
        start = time.perf_counter()
        predict([text])
        latencies.append(1e3 * (time.perf_counter() - start))
    return statistics.median(latencies), sorted(latencies)[int(0.95 * len(latencies))]


class OneBatchPerCore:
    """A TextClassifier's network run the way OnnxClassifier runs on the CPU: length-sorted batches of 32, one
    per core, each on one torch thread (torch lets go of the GIL inside its kernels)."""

    def __init__(self, clf, threads: int):
        from concurrent.futures import ThreadPoolExecutor

        self.clf, self.pool = clf, ThreadPoolExecutor(threads)

    def predict_proba(self, texts):
        from textrnn.data import check_texts

        corpus = self.clf._corpus(self.clf.vectorizer_, check_texts(texts))
        order = np.argsort(corpus.lengths, kind="stable")
        out = np.empty((len(texts), len(self.clf.classes_)), dtype=np.float32)

        def run(rows):
            torch.set_num_threads(1)  # per thread: each pool thread keeps one
            with torch.no_grad():
                out[rows] = torch.softmax(self.clf.model_(*corpus.batch(rows)), 1).numpy()

        list(self.pool.map(run, [order[i : i + 32] for i in range(0, len(order), 32)]))
        return out

    def predict(self, texts):
        return [self.clf.classes_[i] for i in self.predict_proba(texts).argmax(1)]


def main() -> None:
    from textrnn import TextClassifier, load_dataset
    from textrnn.deploy.export import export_onnx
    from textrnn.deploy.runtime import OnnxClassifier

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    for name, loader in (("ag_news_mini", lambda: load_dataset("ag_news", DATA / "ag_news_mini")),
                         ("sst2", lambda: load_dataset("sst2", DATA / "sst2"))):
        ds = loader()
        text = ds.text
        clf = TextClassifier(epochs=2, progress=False).fit(ds.train.texts(text), ds.labels_of(ds.train),
                                                           classes=ds.classes)
        texts, labels = ds.test.texts(text), np.asarray(ds.labels_of(ds.test))
        with tempfile.TemporaryDirectory() as tmp:
            export = export_onnx(clf.save_pretrained(Path(tmp) / "model"), Path(tmp) / "onnx", quantize="int8")
            sizes = {"pytorch": (Path(tmp) / "model" / "model.safetensors").stat().st_size,
                     "onnx fp32": (export / "model.onnx").stat().st_size,
                     "onnx int8": (export / "model.int8.onnx").stat().st_size}
            runtimes = {"pytorch": clf, "onnx fp32": OnnxClassifier(export),
                        "onnx int8": OnnxClassifier(export, quantized=True)}
            torch_int8 = TextClassifier.from_pretrained(Path(tmp) / "model", device="cpu")
            try:
                torch_int8.model_ = torch.ao.quantization.quantize_dynamic(
                    torch_int8.model_, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
                runtimes["pytorch int8"] = torch_int8
            except Exception as exc:  # not every build carries the quantized kernels
                print(f"PyTorch dynamic quantization unavailable: {exc}")
            runtimes["pytorch 1/core"] = OneBatchPerCore(clf, torch.get_num_threads())
            batched = throughputs({name: model.predict_proba for name, model in runtimes.items()}, texts)
            for runtime, model in runtimes.items():
                accuracy = float(np.mean(np.asarray(model.predict(texts)) == labels))
                rows.append((name, runtime, accuracy, sizes.get(runtime), batched[runtime],
                             *latency(model.predict_proba, texts)))
    print(f"\n{'data':<13}{'runtime':<16}{'accuracy':>9}{'size MB':>9}{'texts/s':>10}{'x torch':>8}"
          f"{'1-text ms':>10}{'p95 ms':>8}")
    base = {}
    for data, runtime, accuracy, size, throughput, median, p95 in rows:
        base.setdefault(data, throughput)
        size_text = f"{size / 1e6:.2f}" if size else "-"
        print(f"{data:<13}{runtime:<16}{accuracy:>9.4f}{size_text:>9}{throughput:>10,.0f}"
              f"{throughput / base[data]:>8.2f}{median:>10.2f}{p95:>8.2f}")


if __name__ == "__main__":
    sys.exit(main())
