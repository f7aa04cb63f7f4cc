"""The files of a model directory, and reading its JSON without torch.

    config.json          what rebuilds the network: format, architecture, shapes, labels, the tokenizer's kind
    model.safetensors    the weights (never a pickle)
    tokenizer.json       the vocabulary and standardization, as a Hugging Face `tokenizers` file
    trainer_state.json   how it was trained: every hyperparameter, the per-epoch history, the run record
                         (versions, data checksums, where the data came from)
    linear_part.safetensors  where the classifier kept a linear n-gram part beside the network: its weights
                         (config.json's "linear_part" says how it reads texts and its weight in the average)

This module needs only the standard library, so that a verb can say "no model directory at X" before it spends
seconds importing torch; pretrained.py builds networks from these files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import TextrnnError
from .version import __version__

FORMAT_VERSION = 2  # 1: textrnn 0.1's single config.json; 2: config.json + trainer_state.json
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
TRAINER_STATE_FILE = "trainer_state.json"
LINEAR_PART_FILE = "linear_part.safetensors"
# what a run writes into its directory before (and beside) the model
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"  # --tensorboard's event files
PRETRAINED_LM_DIR = "lm"  # the language model `textrnn train --pretrain` trained for its classifier


def read_json(path: Path) -> dict:
    """A JSON object from `path`; anything else is a TextrnnError naming the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TextrnnError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise TextrnnError(f"{path} is not a textrnn file: it holds a {type(value).__name__}, not an object")
    return value


def read_configs(directory: str | os.PathLike) -> tuple[dict, dict | None]:
    """(config, trainer_state) of a model directory in today's format, whatever format it was written in;
    trainer_state is None when none was recorded. Reads JSON only."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TextrnnError(f"no model directory at {directory}")
    if not (directory / CONFIG_FILE).is_file():
        raise TextrnnError(f"{directory} is not a textrnn model: {CONFIG_FILE} is missing")
    config = read_json(directory / CONFIG_FILE)
    version = config.get("format", 1)
    if version == 1:
        return _upgrade_format_1(config, directory)
    if version != FORMAT_VERSION:
        raise TextrnnError(f"{directory / CONFIG_FILE} has format {version!r}; this textrnn ({__version__}) reads "
                           f"formats 1 and {FORMAT_VERSION}: upgrade textrnn to load it")
    state_path = directory / TRAINER_STATE_FILE
    trainer_state = read_json(state_path) if state_path.is_file() else None
    return config, trainer_state


def check_model_directory(directory: str | os.PathLike) -> tuple[dict, dict | None]:
    """read_configs, once the files a model cannot load without are there: the first check of every verb (and
    loader) that reads a model directory."""
    configs = read_configs(directory)
    for name in (TOKENIZER_FILE, WEIGHTS_FILE):
        if not (Path(directory) / name).is_file():
            raise TextrnnError(f"{directory} is not a textrnn model: {name} is missing")
    return configs


def is_model_directory(path: Path) -> bool:
    """Whether `path` is (or is becoming) a directory textrnn wrote: a model, or what a run writes there before
    its model (checkpoints, TensorBoard's logs, the language model a --pretrain run trained)."""
    return ((path / CONFIG_FILE).is_file() or (path / CHECKPOINTS_DIR).is_dir() or (path / TENSORBOARD_DIR).is_dir()
            or (path / PRETRAINED_LM_DIR / CONFIG_FILE).is_file())


def check_model_target(target: str | os.PathLike) -> None:
    """Refuse to write a model directory over anything but an earlier one (or an empty directory): the check a
    save makes, and that the training verbs make first, before a run that would end in it."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise TextrnnError(f"{target} is a file: a model directory cannot be written there")
    if target.is_dir() and not is_model_directory(target) and any(target.iterdir()):
        raise TextrnnError(f"{target} exists and is not a textrnn model directory; not overwriting it")


def _upgrade_format_1(old: dict, directory: Path) -> tuple[dict, dict]:
    try:
        params = old["params"]
        config = {"format": 1, "textrnn_version": old.get("textrnn_version"), "architecture": "RNNClassifier",
                  "model": old["model"], "labels": old["labels"],
                  "tokenizer": {"type": old["vectorizer"].get("type", "word"),
                                "max_tokens": old["vectorizer"]["max_tokens"], "max_len": params.get("max_len"),
                                "truncate": params.get("truncate", "head"), "file": TOKENIZER_FILE}}
    except (KeyError, TypeError, AttributeError) as exc:
        raise TextrnnError(f"{directory / CONFIG_FILE} is not a valid textrnn config: missing {exc}") from None
    run = old.get("run") or {"metadata": old.get("metadata", {})}
    coverage = run.get("metadata", {}).get("embedding_coverage")  # 0.1 kept it among the metadata
    if coverage and "embedding_coverage" not in run:
        run = {**run, "embedding_coverage": coverage}
    return config, {"params": params, "history": old.get("history", []), "run": run}
