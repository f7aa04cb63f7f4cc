"""PyTorch against onnxruntime (fp32 and int8) for the default BiLSTM: throughput, single-text latency, file
sizes and accuracy, side by side in one run.

    python bench/onnx_speed.py            # about 2 minutes on 2 cores

The default model (`textrnn train` with no flags: a 1-layer masked BiLSTM, 128-d embedding, 64 units) is
trained for 2 epochs on ag_news_mini and on sst2, exported with `--quantize int8`, and each runtime labels the
test texts: batched (the whole file, each runtime's own batching), then one text at a time (300 texts).
PyTorch's own dynamic int8 quantization (torch.ao, nn.LSTM and nn.Linear) is measured beside onnxruntime's.
Runs are interleaved and repeated; the best of 3 is kept for throughput.
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


def timed(predict, texts, repeats=3) -> tuple[float, float, float]:
    """(batched texts/s, median and p95 single-text latency in ms)."""
    predict(texts[:256])  # warm-up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        predict(texts)
        best = max(best, len(texts) / (time.perf_counter() - start))
    latencies = []
    for text in texts[:300]:
        start = time.perf_counter()
        predict([text])
        latencies.append(1e3 * (time.perf_counter() - start))
    return best, statistics.median(latencies), sorted(latencies)[int(0.95 * len(latencies))]


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
            for runtime, model in runtimes.items():
                accuracy = float(np.mean(np.asarray(model.predict(texts)) == labels))
                rows.append((name, runtime, accuracy, sizes.get(runtime), *timed(model.predict_proba, texts)))
    print(f"\n{'data':<13}{'runtime':<14}{'accuracy':>9}{'size MB':>9}{'texts/s':>10}{'x torch':>8}"
          f"{'1-text ms':>10}{'p95 ms':>8}")
    base = {}
    for data, runtime, accuracy, size, throughput, median, p95 in rows:
        base.setdefault(data, throughput)
        size_text = f"{size / 1e6:.2f}" if size else "-"
        print(f"{data:<13}{runtime:<14}{accuracy:>9.4f}{size_text:>9}{throughput:>10,.0f}"
              f"{throughput / base[data]:>8.2f}{median:>10.2f}{p95:>8.2f}")


if __name__ == "__main__":
    sys.exit(main())
