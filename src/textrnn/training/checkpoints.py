"""Training checkpoints: all a run needs to continue bit for bit, written so that a crash cannot spoil them.

A checkpoint is one directory, `checkpoints/step-00000123/` (123 optimizer steps done), holding

    tensors.safetensors  model weights, optimizer moments, torch's RNG, callbacks' tensors (the best epoch's
                         weights, for early stopping)
    tokenizer.json       the vocabulary (any other files the caller adds)
    state.json           where the run stands (epoch, step, the data-order RNG, scheduler, history, callbacks'
                         state), the run's own record, and the SHA-256 of every other file

It is written into a temporary directory and renamed into place when complete, and the oldest are deleted only
after a new one has landed, so the previous good checkpoint survives a crash in mid-write. A run that finishes
keeps only its final checkpoint. `latest()` checks
each file against its recorded digest and falls back, newest first, to the first checkpoint that passes,
saying why it passed over any other. No pickles: tensors go to safetensors, everything else to JSON.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import TextrnnError

log = logging.getLogger("textrnn")

TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
# 2: the position records stopped_early instead of finished; 3: the network's weights under encoder./head.,
# early stopping's state under callbacks
FORMAT_VERSION = 3


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Checkpoint:
    path: Path
    tensors: dict[str, torch.Tensor]
    state: dict

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors saved under `prefix` ("model.", "optimizer.", ...), with the prefix taken off."""
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}


@dataclass
class Checkpointer:
    """Writes and finds the checkpoints of one run, in `directory`.

    every_steps: also checkpoint every N optimizer steps (besides the end of every epoch); None: epochs only.
    keep: how many of the newest checkpoints to keep (at least 2, so one good one survives a bad write).
    run: the run's own record (config, data checksums, ...), stored in every state.json.
    files: extra files for every checkpoint: name -> a function that writes it to the path it is given.
    """

    directory: Path
    every_steps: int | None = None
    keep: int = 2
    run: dict = field(default_factory=dict)
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.every_steps is not None and self.every_steps < 1:
            raise TextrnnError(f"checkpoint interval must be at least 1 step, got {self.every_steps}")
        self.keep = max(2, self.keep)

    def paths(self) -> list[Path]:
        """The checkpoint directories, oldest first (temporary ones left by a crash are not among them)."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.is_dir() and p.name.startswith("step-"))

    def clear(self) -> int:
        """Remove every checkpoint (a fresh run starting where an earlier one left its own); how many there were."""
        paths = self.paths()
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
        return len(paths)

    def save(self, step: int, tensors: dict[str, torch.Tensor], state: dict) -> Path:
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"step-{step:08d}"
        tmp = Path(tempfile.mkdtemp(dir=self.directory, prefix=".tmp-"))
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / TENSORS_FILE)
            for name, write in self.files.items():
                write(tmp / name)
            digests = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
            record = {"format": FORMAT_VERSION, "step": step, "files": digests, "run": self.run, **state}
            (tmp / STATE_FILE).write_text(json.dumps(record, indent=1) + "\n")
            for p in tmp.iterdir():
                _fsync(p)
            if target.exists():  # the same step again (a resumed run re-reaching it): replace it
                shutil.rmtree(target)
            tmp.rename(target)
            _fsync(self.directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.prune(self.keep)
        return target

    def prune(self, keep: int) -> None:
        """Delete all but the newest `keep` checkpoints."""
        for old in self.paths()[: -keep]:
            shutil.rmtree(old, ignore_errors=True)

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that reads back intact; None if there is none at all.

        A checkpoint that fails its checks is reported and passed over for the one before it; if every one
        fails, the error names each and why.
        """
        paths = self.paths()
        if not paths:
            return None
        problems = []
        for path in reversed(paths):
            try:
                checkpoint = read_checkpoint(path)
            except TextrnnError as exc:
                log.warning("%s; falling back to the checkpoint before it", exc)
                problems.append(str(exc))
                continue
            return checkpoint
        raise TextrnnError(f"no intact checkpoint in {self.directory}: {'; '.join(problems)}")


def checkpoint_to_resume(resume, checkpointer: Checkpointer | None) -> Checkpoint:
    """What `fit(..., resume=...)` continues from: the Checkpoint it was given, or `checkpointer`'s newest intact
    one (resume=True)."""
    if checkpointer is None:
        raise TextrnnError("resume=True continues from checkpoint_dir, and none is set")
    checkpoint = resume if isinstance(resume, Checkpoint) else checkpointer.latest()
    if checkpoint is None:
        raise TextrnnError(f"no checkpoint to resume from in {checkpointer.directory}")
    return checkpoint


def hyperparameter_names(estimator_class: type) -> list[str]:
    """An estimator's hyperparameters: its constructor's parameters (what scikit-learn's `get_params` reads, found
    without scikit-learn, which the command line's classes do not import)."""
    return [name for name in inspect.signature(estimator_class.__init__).parameters if name != "self"]


def recordable_params(estimator) -> dict:
    """An estimator's hyperparameters as a run records them (JSON: paths as strings; `progress` is not the run's)."""
    params = {name: getattr(estimator, name) for name in hyperparameter_names(type(estimator)) if name != "progress"}
    for name in ("checkpoint_dir", "tensorboard_dir"):
        if params.get(name) is not None:
            params[name] = str(params[name])
    return params


def read_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint directory; a TextrnnError says what is wrong with it."""
    from safetensors.torch import load_file

    try:
        state = json.loads((path / STATE_FILE).read_text())
    except FileNotFoundError:
        raise TextrnnError(f"checkpoint {path} is incomplete: {STATE_FILE} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TextrnnError(f"checkpoint {path} is corrupted: {STATE_FILE} is not valid JSON ({exc})") from None
    if not isinstance(state, dict) or "files" not in state:
        raise TextrnnError(f"checkpoint {path} is not a textrnn checkpoint")
    if state.get("format") != FORMAT_VERSION:
        raise TextrnnError(f"checkpoint {path} has format {state.get('format')}, this textrnn reads format "
                           f"{FORMAT_VERSION}: resume it with the textrnn version that wrote it")
    for name, digest in state["files"].items():
        file = path / name
        if not file.is_file():
            raise TextrnnError(f"checkpoint {path} is incomplete: {name} is missing")
        if sha256_file(file) != digest:
            raise TextrnnError(f"checkpoint {path} is corrupted: {name} does not match its recorded SHA-256 "
                               f"(truncated or overwritten)")
    try:
        tensors = load_file(path / TENSORS_FILE)
    except Exception as exc:  # safetensors raises its own error types and OSError
        raise TextrnnError(f"checkpoint {path} is corrupted: cannot read {TENSORS_FILE} ({exc})") from None
    return Checkpoint(path, tensors, state)


# -- optimizer state as tensors + JSON ----------------------------------------------------------------------------
def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """The optimizer's state split into tensors (for safetensors) and JSON-able numbers."""
    from .optim import FastAdam

    if isinstance(optimizer, FastAdam):
        state = optimizer.state_dict()
        return state["tensors"], {"kind": "fast-adam", **state["meta"]}
    state = optimizer.state_dict()
    tensors, keys = {}, {}
    for index, param_state in state["state"].items():
        keys[str(index)] = sorted(param_state)
        for key, value in param_state.items():
            tensors[f"{index}.{key}"] = value.detach().cpu().clone()
    return tensors, {"kind": "torch", "param_groups": state["param_groups"], "keys": keys}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    from .optim import FastAdam

    if isinstance(optimizer, FastAdam) != (meta["kind"] == "fast-adam"):
        raise TextrnnError("the checkpoint was written with a different optimizer than this run's")
    if isinstance(optimizer, FastAdam):
        optimizer.load_state_dict({"tensors": tensors, "meta": meta})
        return
    state = {int(i): {k: tensors[f"{i}.{k}"] for k in keys} for i, keys in meta["keys"].items()}
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
