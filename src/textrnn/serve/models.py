"""The models a server holds: each loaded once at start, with what `GET /v1/models/NAME` says about it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import TextrnnError

METRICS_FILE = "metrics.json"  # what `textrnn evaluate MODEL --report MODEL` leaves in the directory
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # goes into URLs: /v1/models/NAME/predict


@dataclass
class ServedModel:
    name: str
    path: Path
    classifier: object  # TextClassifier, or deploy.runtime.OnnxClassifier
    runtime: str  # "torch" or "onnx"
    examples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = [str(label) for label in self.classifier.classes_]

    @property
    def can_explain(self) -> bool:
        return self.runtime == "torch"

    @property
    def exact_in_any_batch(self) -> bool:
        """Whether a text's answer is the same whatever it is batched with: a masked model's is. An unmasked one
        reads its batch's padding (as the lesson's Keras models do), so its requests are not gathered."""
        return self._config().get("mask", True)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.classifier.predict_proba(texts)

    def explain(self, texts: list[str], method: str) -> list:
        return self.classifier.explain(texts, method=method)

    def _config(self) -> dict:
        if self.runtime == "torch":
            return self.classifier.model_.config.to_dict()
        return dict(self.classifier.config.get("model", {}))

    def info(self) -> dict:
        """What a client may want to know before sending texts."""
        config = self._config()
        info = {"name": self.name, "labels": self.labels, "runtime": self.runtime, "explain": self.can_explain,
                "micro_batching": self.exact_in_any_batch,
                "architecture": {k: config.get(k) for k in ("cell", "embedding_dim", "hidden_size", "layers",
                                                             "bidirectional", "pooling", "mask", "vocab_size")},
                "examples": self.examples}
        # NBSVM beside the network, averaged at this weight (TextClassifier and OnnxClassifier both hold it)
        weight = self.classifier.linear_weight_
        info["linear_part"] = {"weight": weight} if weight else None
        if self.runtime == "torch":
            info["architecture"]["tokenizer"] = self.classifier.tokenizer
            info["architecture"]["parameters"] = self.classifier.parameter_counts["pytorch"]
        metrics = self.path / METRICS_FILE
        if metrics.is_file():
            try:
                recorded = json.loads(metrics.read_text())
                info["test_metrics"] = {k: recorded[k] for k in ("accuracy", "macro_f1", "n") if k in recorded}
            except (json.JSONDecodeError, TypeError):
                pass  # a damaged report is no reason not to serve the model
        return info


def load_served_model(path: str | Path, name: str | None = None, runtime: str = "torch", int8: bool = False,
                      examples: Sequence[str] = (), device: str = "auto") -> ServedModel:
    """Load the model directory (or ONNX export) at `path`, PyTorch's onto `device`; any problem is a TextrnnError
    naming it."""
    path = Path(path)
    name = name or path.resolve().name
    if not NAME_PATTERN.match(name):
        raise TextrnnError(f"model name {name!r} cannot be used in a URL: use letters, digits, '.', '_' and '-' "
                           f"(give one with --name)")
    if runtime == "onnx":
        if device != "auto":
            raise TextrnnError(f"device {device!r} is for the torch runtime: onnxruntime picks its own provider "
                               "(CUDA where it is installed)")
        from ..deploy.runtime import OnnxClassifier

        classifier = OnnxClassifier(path, quantized=int8)
    elif runtime == "torch":
        from ..classifier import BaseTextClassifier

        classifier = BaseTextClassifier.from_pretrained(path, device=device)
        classifier.model_.eval()
    else:
        raise TextrnnError(f"unknown runtime {runtime!r}: torch or onnx")
    return ServedModel(name=name, path=path, classifier=classifier, runtime=runtime, examples=list(examples))
