"""`export_onnx`: a model directory -> an ONNX directory that needs onnxruntime and tokenizers only.

    model.onnx        the network, with inputs `tokens` (int64, batch x width, padded with 0 at the end) and
                      `lengths` (int64, batch; absent from an unmasked model's graph, which reads the padding)
                      and output `probabilities` (float32, batch x classes); batch size and width are
                      dynamic, and padding is masked inside the graph exactly as in PyTorch
    model.int8.onnx   with quantize="int8": weights stored as int8, activations quantized on the fly
                      (onnxruntime's dynamic quantization)
    tokenizer.json    the model's own tokenizer (a Hugging Face `tokenizers` file)
    linear_part.safetensors
                      where the model has a linear n-gram part beside the network: its weights, as in the model
                      directory (the runtime averages its log-probabilities with the graph's; a linear map over
                      hashed n-grams of the whole text, which it computes with scikit-learn)
    config.json       labels, tokenizer settings (kind, max_len, truncate), opset, textrnn version, the
                      SHA-256 of tokenizer.json (model.onnx carries the same in its metadata), and the linear
                      part's settings and weight where there is one

The graph is traced by PyTorch's TorchScript-based exporter from `graph.DeployedClassifier`: the classifier's
embedding, pooling and head, and each recurrent layer as one ONNX LSTM/GRU/RNN node (both directions) that
reads the texts' lengths.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from ..errors import TextrnnError
from ..model_files import LINEAR_PART_FILE
from ..pretrained import TOKENIZER_FILE, linear_part_entry, load_model_directory, make_shareable
from ..training.checkpoints import sha256_file
from ..version import __version__
from .graph import DeployedClassifier

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
CONFIG_FILE = "config.json"
OPSET = 17
FORMAT = "textrnn-onnx/1"
QUANTIZATIONS = ("int8",)


def _example_batch(vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    # rows of different lengths padded at the end, as the runtime feeds them (the trace's only shapes)
    lengths = torch.tensor([5, 2, 4], dtype=torch.long)
    tokens = torch.randint(2, max(3, vocab_size), (3, 5), generator=torch.Generator().manual_seed(0))
    tokens[torch.arange(5)[None, :] >= lengths[:, None]] = 0
    return tokens, lengths


def trace_to_onnx(model: torch.nn.Module, path: Path) -> None:
    """Write `model` (an RNNClassifier) to `path` as an ONNX graph: tokens, lengths -> probabilities."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(DeployedClassifier(model).eval(), _example_batch(model.config.vocab_size), path,
                          input_names=["tokens", "lengths"], output_names=["probabilities"],
                          dynamic_axes={"tokens": {0: "batch", 1: "width"}, "lengths": {0: "batch"},
                                        "probabilities": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)


def export_onnx(model_dir: str | os.PathLike, out: str | os.PathLike, quantize: str | None = None) -> Path:
    """Export the model in `model_dir` to the directory `out` (replaced if it holds an earlier export)."""
    import onnx

    if quantize is not None and quantize not in QUANTIZATIONS:
        raise TextrnnError(f"unknown quantization {quantize!r}: choose one of {', '.join(QUANTIZATIONS)}")
    loaded = load_model_directory(model_dir, device="cpu")
    out = Path(out)
    if out.exists() and not (out / CONFIG_FILE).is_file() and any(out.iterdir()):
        raise TextrnnError(f"{out} exists and is not a textrnn ONNX export; not overwriting it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    make_shareable(tmp)
    try:
        shutil.copyfile(Path(model_dir) / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        config = {"format": FORMAT, "textrnn_version": __version__, "opset": OPSET, "labels": loaded.labels,
                  "tokenizer": {**loaded.tokenizer, "file": TOKENIZER_FILE,
                                "sha256": sha256_file(tmp / TOKENIZER_FILE)},
                  "architecture": loaded.model.architecture, "model": loaded.model.config.to_dict(),
                  "files": {"fp32": ONNX_FILE, **({"int8": INT8_FILE} if quantize else {})}}
        if loaded.linear_part is not None:
            shutil.copyfile(Path(model_dir) / LINEAR_PART_FILE, tmp / LINEAR_PART_FILE)
            config["linear_part"] = linear_part_entry(loaded.linear_part, loaded.linear_weight)
        trace_to_onnx(loaded.model, tmp / ONNX_FILE)
        graph = onnx.load(tmp / ONNX_FILE)
        metadata = {"textrnn_format": FORMAT, "textrnn_version": __version__, "opset": str(OPSET),
                    "labels": json.dumps(loaded.labels), "tokenizer": json.dumps(config["tokenizer"])}
        onnx.helper.set_model_props(graph, metadata)
        onnx.save(graph, tmp / ONNX_FILE)
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # its advice to pre-process the graph (shape inference) is for CNNs
            try:
                quantize_dynamic(tmp / ONNX_FILE, tmp / INT8_FILE, weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
            quantized = onnx.load(tmp / INT8_FILE)
            onnx.helper.set_model_props(quantized, {**metadata, "quantization": "int8 (dynamic)"})
            onnx.save(quantized, tmp / INT8_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
