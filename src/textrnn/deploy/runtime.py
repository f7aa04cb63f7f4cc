"""`OnnxClassifier`: classify texts with an exported model (export.py) through onnxruntime.

It reads the export's config.json, checks that model.onnx and tokenizer.json are the ones exported together
(labels and the tokenizer's SHA-256 in the graph's metadata), and runs batches of length-sorted, padded token
ids. The execution provider is chosen automatically: CUDA where onnxruntime has it, else the CPU.

On the CPU the batches run side by side, one per core, each on one thread: a recurrent layer is a chain of
small matrix products, one per step, too small to share between threads at every step (measured on 2 cores,
default BiLSTM, int8: 41k texts/s as one batch per core against 29-35k with both threads on each batch).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import TokenizedCorpus, check_texts
from ..errors import TextrnnError
from ..models.ngram_linear import average
from ..pretrained import read_linear_part
from ..text import load_vectorizer
from ..training.checkpoints import sha256_file
from .export import CONFIG_FILE, FORMAT, INT8_FILE, ONNX_FILE, TOKENIZER_FILE

ONNX_SUBDIR = "onnx"  # where `textrnn export MODEL_DIR` writes by default
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def find_export(path: str | os.PathLike) -> Path:
    """The export directory at `path`, or in `path/onnx` (a model directory exported in place)."""
    path = Path(path)
    for candidate in (path, path / ONNX_SUBDIR):
        if (candidate / CONFIG_FILE).is_file() and (candidate / ONNX_FILE).is_file():
            return candidate
    raise TextrnnError(f"no ONNX export at {path}: run `textrnn export {path}` first")


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxClassifier:
    """A classifier backed by onnxruntime; `predict`, `predict_proba`, `classes_`, `linear_part_` and
    `linear_weight_` as TextClassifier's."""

    def __init__(self, directory: str | os.PathLike, quantized: bool = False, batch_size: int = 32,
                 threads: int | None = None):
        import onnxruntime as ort

        self.directory = find_export(directory)
        self.batch_size = batch_size
        self.threads = threads or available_cores()
        config_path = self.directory / CONFIG_FILE
        try:
            self.config = json.loads(config_path.read_text())
            if self.config.get("format") != FORMAT:
                raise TextrnnError(f"{config_path} is not a {FORMAT} export (format {self.config.get('format')!r})")
            tokenizer = self.config["tokenizer"]
            self.classes_ = [str(x) for x in self.config["labels"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TextrnnError(f"{config_path} is not a valid textrnn ONNX config: {exc}") from None
        name = INT8_FILE if quantized else ONNX_FILE
        graph = self.directory / name
        if not graph.is_file():
            raise TextrnnError(f"{graph} is missing" + (": export with --quantize int8" if quantized else ""))
        available = ort.get_available_providers()
        self.providers = [p for p in PREFERRED_PROVIDERS if p in available]
        try:
            options = ort.SessionOptions()
            # onnxruntime's threads spin while they wait for work; on a machine shared with other processes
            # (a server, a test run) that spinning takes the cores the work needs
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            if self.providers[0] == "CPUExecutionProvider":
                options.intra_op_num_threads = options.inter_op_num_threads = 1  # one batch per core instead
            else:
                self.threads = 1  # a GPU takes the batches one after another
            self.session = ort.InferenceSession(str(graph), options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for an unreadable model
            raise TextrnnError(f"cannot load {graph}: {' '.join(str(exc).split())[:300]}") from None
        # the threads that run batches side by side (a ThreadPoolExecutor starts them at its first batches)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="textrnn-onnx") if self.threads > 1 else None
        # an unmasked model never reads the lengths, and its graph has no such input
        self.inputs = [i.name for i in self.session.get_inputs()]
        meta = self.session.get_modelmeta().custom_metadata_map
        if json.loads(meta.get("labels", "null")) != self.classes_:
            raise TextrnnError(f"{graph} was exported with other labels than {config_path} lists: "
                               f"{meta.get('labels')} against {self.classes_}")
        tokenizer_file = self.directory / tokenizer.get("file", TOKENIZER_FILE)
        recorded = json.loads(meta.get("tokenizer", "{}")).get("sha256")
        if not tokenizer_file.is_file() or sha256_file(tokenizer_file) != recorded:
            raise TextrnnError(f"{tokenizer_file} is not the tokenizer {graph} was exported with "
                               f"(its SHA-256 differs from the one in the model's metadata)")
        self.vectorizer = load_vectorizer(tokenizer_file, tokenizer["type"], max_tokens=tokenizer["max_tokens"])
        self.max_len, self.truncate = tokenizer.get("max_len"), tokenizer.get("truncate", "head")
        # the model's linear n-gram part, averaged with the graph's output as TextClassifier.predict_proba does
        self.linear_part_, self.linear_weight_ = read_linear_part(self.directory, self.config, len(self.classes_))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        corpus = TokenizedCorpus.from_flat(*self.vectorizer.encode_flat(texts), self.max_len, self.truncate)
        out = np.empty((len(texts), len(self.classes_)), dtype=np.float32)
        order = np.argsort(corpus.lengths, kind="stable")  # batches of similar lengths carry little padding

        def run(rows: np.ndarray) -> None:
            tokens, lengths = (t.numpy() for t in corpus.batch(rows))
            if tokens.shape[1] == 0:  # only empty texts: one column of padding, which the graph masks out
                tokens = np.zeros((len(rows), 1), dtype=np.int64)
            feed = {"tokens": tokens, "lengths": lengths}
            out[rows] = self.session.run(None, {name: feed[name] for name in self.inputs})[0]

        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        if len(batches) > 1 and self._pool is not None:
            list(self._pool.map(run, batches))  # onnxruntime lets go of the GIL while it runs a batch
        else:
            for rows in batches:
                run(rows)
        if self.linear_part_ is not None:
            network = np.log(np.maximum(out, np.finfo(np.float32).tiny))
            out = np.exp(average(network, self.linear_part_.log_proba(texts), self.linear_weight_)).astype(np.float32)
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes_[i] for i in self.predict_proba(texts).argmax(1)]
