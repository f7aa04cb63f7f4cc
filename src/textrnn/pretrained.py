"""Model directories: what `save_pretrained` writes and `from_pretrained` reads (the files: model_files.py).

A directory with config.json, model.safetensors and tokenizer.json alone is a complete model; trainer_state.json
is its history. Directories written by textrnn 0.1 (format 1: one config.json holding everything, weights under
`embedding.`/`rnn.`/`classifier.`) still load. Saving is atomic: everything is written into a temporary sibling
and renamed into place, so a failed save leaves no half-written model and an existing one is replaced only on
success (what it holds that a save does not write, such as checkpoints and reports, is carried over).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .errors import TextrnnError
from .data.batching import TRUNCATION
from .model_files import (CONFIG_FILE, FORMAT_VERSION, LINEAR_PART_FILE, TOKENIZER_FILE, TRAINER_STATE_FILE,
                          WEIGHTS_FILE, check_model_directory, check_model_target)
from .models import ModelConfig, RNNClassifier
from .models.ngram_linear import BUCKETS, NGRAM_RANGE, READABLE_TOKEN_PATTERNS, NgramLinearModel
from .models.language_model import LMConfig, RNNLanguageModel
from .text import TOKENIZERS, Vectorizer, load_vectorizer
from .training import resolve_device
from .version import __version__

ARCHITECTURES = {RNNClassifier.architecture: RNNClassifier}
# format 1 kept the network's stages at the top level; format 2 groups them as encoder and head
LEGACY_WEIGHT_PREFIXES = {"embedding.": "encoder.embedding.", "rnn.": "encoder.rnn.", "classifier.": "head."}
# Bounds on config.json's numbers, checked before anything is built: a shared model directory is untrusted input,
# and a lie in it must be an error, not a 512 TB allocation. Generous for any RNN text model.
MODEL_LIMITS = {"vocab_size": 50_000_000, "num_classes": 1_000_000, "embedding_dim": 65_536, "hidden_size": 65_536,
                "layers": 64}
MAX_HEADER_BYTES = 100_000_000  # a safetensors header is JSON names and shapes: kilobytes, not gigabytes
SAFETENSORS_ITEM_SIZES = {"F32": 4}  # textrnn writes float32 weights only
# how a linear n-gram part reads texts, recorded in config.json with its token pattern: a part fitted under other
# settings would read other features
LINEAR_PART_READS = {"ngram_range": list(NGRAM_RANGE), "buckets": BUCKETS}


@dataclass
class ModelDirectory:
    """A model directory as read: the network, its tokenizer, its labels, and how it was trained (if recorded)."""

    model: RNNClassifier
    vectorizer: Vectorizer
    labels: list[str]
    tokenizer: dict  # type, max_tokens, max_len, truncate
    trainer_state: dict | None  # params, history, run; None when the directory has none
    format: int = FORMAT_VERSION
    linear_part: NgramLinearModel | None = None  # the linear n-gram part averaged with the network, if any
    linear_weight: float = 0.0  # its weight in the average


def versions() -> dict[str, str]:
    """The versions a run used, for its record."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"textrnn": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "numpy", "tokenizers", "pyarrow", "safetensors", "scikit-learn", "gensim"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    found["torch_threads"] = str(torch.get_num_threads())
    return found


# -- saving -------------------------------------------------------------------------------------------------------
def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a filesystem without hard links
        shutil.copy2(source, target)


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link into `new` whatever `old` holds that a save does not write (checkpoints, evaluation reports),
    so replacing a model directory keeps them; the old directory keeps its links until it is removed."""
    for entry in old.iterdir():
        if (new / entry.name).exists() or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, new / entry.name, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, new / entry.name)


def make_shareable(directory: Path) -> None:
    """Give a temporary directory (mkdtemp makes it private, 0700) the permissions of any new directory."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)


def save_model_directory(target: str | os.PathLike, model, vectorizer: Vectorizer, labels: list[str] | None,
                         tokenizer: dict, trainer_state: dict | None = None,
                         extra_files: dict[str, Callable[[Path], object]] | None = None,
                         linear_part: NgramLinearModel | None = None, linear_weight: float = 0.0) -> Path:
    """Write a model directory atomically (a classifier's, or a language model's with `labels` None);
    `extra_files` maps a file name to a function that writes it; `linear_part`: a classifier's linear n-gram part,
    averaged with the network at `linear_weight`."""
    from safetensors.numpy import save_file as save_arrays
    from safetensors.torch import save_file

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    check_model_target(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    make_shareable(tmp)
    try:
        # clone: after training the weights are views into the optimizer's flat buffer, and safetensors
        # refuses tensors that share memory
        weights = model.weights_to_save() if hasattr(model, "weights_to_save") else model.state_dict()
        state = {k: v.detach().cpu().clone() for k, v in weights.items()}
        save_file(state, tmp / WEIGHTS_FILE, metadata={"format": "pt"})
        vectorizer.save(tmp / TOKENIZER_FILE)
        config = {"format": FORMAT_VERSION, "textrnn_version": __version__, "architecture": model.architecture,
                  "model": model.config.to_dict(), "tokenizer": {**tokenizer, "file": TOKENIZER_FILE}}
        if labels is not None:
            config["labels"] = list(labels)
        if linear_part is not None:
            save_arrays(linear_part.to_arrays(), tmp / LINEAR_PART_FILE, metadata={"format": "np"})
            config["linear_part"] = linear_part_entry(linear_part, linear_weight)
        _write_json(tmp / CONFIG_FILE, config)
        if trainer_state is not None:
            _write_json(tmp / TRAINER_STATE_FILE, {"format": FORMAT_VERSION, **trainer_state})
        for name, write in (extra_files or {}).items():
            write(tmp / name)
        if target.exists():
            _carry_over(target, tmp)
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


# -- loading ------------------------------------------------------------------------------------------------------
def load_model_directory(directory: str | os.PathLike, device: str = "auto") -> ModelDirectory:
    """Read a model directory (JSON and safetensors only) onto `device`."""

    directory = Path(directory)
    config, trainer_state = check_model_directory(directory)
    architecture, model_config, labels, tokenizer = _check_config(config, directory / CONFIG_FILE)
    rename = _upgrade_weight_name if config.get("format") == 1 else (lambda name: name)
    model, vectorizer = _read_network(directory, tokenizer, architecture, model_config, rename)
    model = model.to(resolve_device(device)).eval()
    linear_part, linear_weight = read_linear_part(directory, config, len(labels))
    return ModelDirectory(model, vectorizer, labels, tokenizer, trainer_state, config.get("format", 1), linear_part,
                          linear_weight)


def linear_part_entry(part: NgramLinearModel, weight: float) -> dict:
    """config.json's "linear_part": its file, its weight in the average, and how it reads texts."""
    return {"file": LINEAR_PART_FILE, "weight": float(weight), **LINEAR_PART_READS, "token_pattern": part.token_pattern}


def read_linear_part(directory: Path, config: dict, num_classes: int) -> tuple[NgramLinearModel | None, float]:
    """(part, weight) from config.json's "linear_part" and its file; (None, 0.0) where there is none."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file as load_arrays

    entry = config.get("linear_part")
    if entry is None:
        return None, 0.0
    where = directory / CONFIG_FILE
    if not isinstance(entry, dict):
        raise TextrnnError(f"{where}: linear_part must be an object")
    reads = {name: entry.get(name) for name in LINEAR_PART_READS}
    if reads != LINEAR_PART_READS or entry.get("token_pattern") not in READABLE_TOKEN_PATTERNS:
        raise TextrnnError(f"{where}: linear_part reads texts as {reads}, tokens {entry.get('token_pattern')!r}; "
                           f"this textrnn reads them as {LINEAR_PART_READS}, tokens one of "
                           f"{', '.join(map(repr, READABLE_TOKEN_PATTERNS))}")
    weight = entry.get("weight")
    if type(weight) not in (int, float) or not 0 < weight <= 1:
        raise TextrnnError(f"{where}: linear_part.weight is {weight!r}; it must be a number in (0, 1]")
    path = directory / LINEAR_PART_FILE
    if entry.get("file") != LINEAR_PART_FILE or not path.is_file():
        raise TextrnnError(f"{where} names a linear part, but {path} is missing")
    try:
        arrays = load_arrays(path)
    except (SafetensorError, OSError) as exc:
        raise TextrnnError(f"{path} is not a readable safetensors file: {exc}") from None
    return NgramLinearModel.from_arrays(arrays, num_classes, str(path), entry["token_pattern"]), float(weight)


def _check_config(config: dict, where: Path) -> tuple[type, ModelConfig, list[str], dict]:
    """(architecture, model config, labels, tokenizer settings) from config.json, every value's type and range
    checked; a bad one is a TextrnnError naming the file and the field."""
    def bad(field: str, why: str) -> TextrnnError:
        return TextrnnError(f"{where}: {field} {why}")

    name = config.get("architecture")
    architecture = ARCHITECTURES.get(name) if isinstance(name, str) else None
    if name == RNNLanguageModel.architecture:
        raise bad("architecture", "is a language model's, not a classifier's: use it with `textrnn generate`, "
                  "`textrnn lm evaluate` or `textrnn train --init-from`")
    if architecture is None:
        raise bad("architecture", f"is {name!r}; this textrnn builds "
                  f"{', '.join(ARCHITECTURES)}")
    model = config.get("model")
    if not isinstance(model, dict):
        raise bad("model", "is missing or not an object")
    unknown = set(model) - set(ModelConfig.__dataclass_fields__)
    if unknown:
        raise bad(f"model.{sorted(unknown)[0]}", "is not a setting of this textrnn's models")
    for name, limit in MODEL_LIMITS.items():
        if name not in model:  # the rest have defaults
            if name in ("vocab_size", "num_classes"):
                raise bad(f"model.{name}", "is missing")
            continue
        value = model[name]
        if type(value) is not int or not 1 <= value <= limit:
            raise bad(f"model.{name}", f"is {value!r}; it must be a whole number from 1 to {limit:,}")
    for name in ("bidirectional", "mask"):
        if name in model and not isinstance(model[name], bool):
            raise bad(f"model.{name}", f"is {model[name]!r}; it must be true or false")
    for name in ("dropout", "embedding_dropout", "token_dropout", "input_dropout"):
        if name in model and (type(model[name]) not in (int, float) or not 0 <= model[name] < 1):
            raise bad(f"model.{name}", f"is {model[name]!r}; it must be a number in [0, 1)")
    for name in ("cell", "pooling"):
        if name in model and not isinstance(model[name], str):
            raise bad(f"model.{name}", f"is {model[name]!r}; it must be a name")
    try:
        model_config = ModelConfig(**model)
    except TextrnnError as exc:
        raise bad("model", f"is not valid: {exc}") from None
    labels = config.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in labels):
        raise bad("labels", "must be a list of class names")
    labels = [str(x) for x in labels]
    if len(labels) != model_config.num_classes or len(set(labels)) != len(labels):
        raise bad("labels", f"holds {len(labels)} names ({len(set(labels))} distinct) but the output layer "
                  f"(model.num_classes) has {model_config.num_classes}")
    return architecture, model_config, labels, _check_tokenizer(config, bad)


def _check_tokenizer(config: dict, bad) -> dict:
    tokenizer = config.get("tokenizer")
    if not isinstance(tokenizer, dict):
        raise bad("tokenizer", "is missing or not an object")
    kind, max_tokens = tokenizer.get("type", "word"), tokenizer.get("max_tokens")
    if kind not in TOKENIZERS:
        raise bad("tokenizer.type", f"is {kind!r}; choose one of {', '.join(TOKENIZERS)}")
    if type(max_tokens) is not int or not 3 <= max_tokens <= MODEL_LIMITS["vocab_size"]:
        raise bad("tokenizer.max_tokens", f"is {max_tokens!r}; it must be a whole number from 3 to "
                  f"{MODEL_LIMITS['vocab_size']:,}")
    max_len = tokenizer.get("max_len")
    if max_len is not None and (type(max_len) is not int or max_len < 1):
        raise bad("tokenizer.max_len", f"is {max_len!r}; it must be a whole number of tokens, at least 1")
    if tokenizer.get("truncate", "head") not in TRUNCATION:
        raise bad("tokenizer.truncate", f"is {tokenizer.get('truncate')!r}; choose one of {', '.join(TRUNCATION)}")
    return {"type": kind, "max_tokens": max_tokens, "max_len": max_len, "truncate": tokenizer.get("truncate", "head")}


# -- language models ------------------------------------------------------------------------------------------------
@dataclass
class LanguageModelDirectory:
    model: RNNLanguageModel
    vectorizer: Vectorizer
    tokenizer: dict
    trainer_state: dict | None


def load_language_model_directory(directory: str | os.PathLike, device: str = "auto") -> LanguageModelDirectory:
    """Read a language model's directory (JSON and safetensors only), every size checked before allocation."""

    directory = Path(directory)
    config, trainer_state = check_model_directory(directory)
    where = directory / CONFIG_FILE

    def bad(field: str, why: str) -> TextrnnError:
        return TextrnnError(f"{where}: {field} {why}")

    if config.get("architecture") != RNNLanguageModel.architecture:
        raise bad("architecture", f"is {config.get('architecture')!r}: this is not a language model (one is made by "
                  "`textrnn lm train`)")
    model = config.get("model")
    if not isinstance(model, dict) or set(model) - set(LMConfig.__dataclass_fields__):
        raise bad("model", "is missing, not an object, or holds settings this textrnn's language models lack")
    for name, limit in (("vocab_size", MODEL_LIMITS["vocab_size"]), ("embedding_dim", 65_536),
                        ("hidden_size", 65_536), ("layers", 64)):
        value = model.get(name)
        if name in model or name == "vocab_size":
            if type(value) is not int or not 1 <= value <= limit:
                raise bad(f"model.{name}", f"is {value!r}; it must be a whole number from 1 to {limit:,}")
    cutoffs = model.get("cutoffs")
    if cutoffs is not None and (not isinstance(cutoffs, list) or not all(type(c) is int for c in cutoffs)):
        raise bad("model.cutoffs", "must be a list of whole numbers")
    try:
        lm_config = LMConfig(**model)
    except (TextrnnError, TypeError) as exc:
        raise bad("model", f"is not valid: {exc}") from None
    tokenizer = _check_tokenizer(config, bad)
    network, vectorizer = _read_network(directory, tokenizer, RNNLanguageModel, lm_config)
    return LanguageModelDirectory(network.to(resolve_device(device)).eval(), vectorizer, tokenizer, trainer_state)


def _read_network(directory: Path, tokenizer: dict, architecture, config, rename=lambda name: name):
    """(network, vectorizer) of a directory whose config.json has been checked: the weights file's header against
    the shapes the config implies and the tokenizer against the embedding, before anything is allocated."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    _check_weights_file(directory / WEIGHTS_FILE, architecture.weight_shapes(config), rename)
    vectorizer = load_vectorizer(directory / TOKENIZER_FILE, tokenizer["type"], max_tokens=tokenizer["max_tokens"])
    if vectorizer.vocab_size > config.vocab_size:
        raise TextrnnError(f"{directory / TOKENIZER_FILE} has {vectorizer.vocab_size:,} tokens but the embedding in "
                           f"{directory / CONFIG_FILE} (model.vocab_size) has {config.vocab_size:,} rows")
    # every size has been checked against the weights file: building the network allocates what the file holds
    network = architecture(config)
    try:
        weights = {rename(k): v for k, v in load_file(directory / WEIGHTS_FILE).items()}
        if hasattr(network, "load_weights"):
            network.load_weights(weights)
        else:
            network.load_state_dict(weights)
    except (SafetensorError, RuntimeError, OSError) as exc:
        detail = " ".join(str(exc).split())  # torch's message spans lines; ours is one
        raise TextrnnError(f"cannot load weights from {directory / WEIGHTS_FILE}: {detail}") from None
    return network, vectorizer


def embedding_row_norm(directory: str | os.PathLike) -> float:
    """The RMS length of the word rows (padding and out-of-vocabulary excluded) of a language model's embedding."""
    from safetensors import safe_open

    path = Path(directory) / WEIGHTS_FILE
    try:
        with safe_open(path, framework="pt") as weights:
            rows = weights.get_tensor("embedding.weight")[2:].double()
    except Exception as exc:  # safetensors raises its own types for a bad file or a missing tensor
        raise TextrnnError(f"cannot read the embedding of {path}: {exc}") from None
    return float(rows.pow(2).sum(dim=1).mean().sqrt())


def read_safetensors_header(path: Path) -> dict[str, dict]:
    """The tensors a safetensors file says it holds (name -> dtype, shape, data_offsets), read from its header
    alone and checked against the file's size, so that nothing is allocated on its word."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise TextrnnError(f"{path}: not a safetensors file, it is {size} bytes long")
        length = int.from_bytes(prefix, "little")
        if length > min(size - 8, MAX_HEADER_BYTES):
            raise TextrnnError(f"{path}: not a valid safetensors file, its header claims {length:,} bytes")
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TextrnnError(f"{path}: not a valid safetensors file, its header is not JSON") from None
    if not isinstance(header, dict):
        raise TextrnnError(f"{path}: not a valid safetensors file, its header is not an object")
    data_size = size - 8 - length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = all(type(n) is int and n >= 0 for n in [*shape, start, end]) and 0 <= start <= end <= data_size
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise TextrnnError(f"{path}: the header's entry for {name!r} is malformed or points outside the file")
        tensors[name] = {"dtype": dtype, "shape": tuple(shape), "data_offsets": (start, end)}
    return tensors


def _check_weights_file(path: Path, expected: dict[str, tuple[int, ...]], rename) -> None:
    """The weights file holds exactly the tensors the config describes: names, shapes, dtypes, byte counts."""
    if not path.is_file():
        raise TextrnnError(f"{path.parent} is not a textrnn model: {path.name} is missing")
    try:
        header = read_safetensors_header(path)
    except TextrnnError as exc:
        raise TextrnnError(f"cannot load weights from {exc}") from None
    found = {rename(name): info for name, info in header.items()}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"holds {extra[0]}, which"
        raise TextrnnError(f"{path} does not match {CONFIG_FILE}: it {what}"
                           f"{'' if missing else ' the configured network does not have'}")
    for name, shape in expected.items():
        info = found[name]
        if info["shape"] != shape:
            raise TextrnnError(f"{path} does not match {CONFIG_FILE}: {name} is {list(info['shape'])} in the file "
                               f"but {list(shape)} in the config")
        item = SAFETENSORS_ITEM_SIZES.get(info["dtype"])
        start, end = info["data_offsets"]
        count = math.prod(shape)
        if item is None or end - start != count * item:
            raise TextrnnError(f"{path}: {name} is stored as {info['dtype']} in {end - start:,} bytes; textrnn "
                               f"expects float32, {count * 4:,} bytes")


def _upgrade_weight_name(name: str) -> str:
    for old, new in LEGACY_WEIGHT_PREFIXES.items():
        if name.startswith(old):
            return new + name[len(old):]
    return name
