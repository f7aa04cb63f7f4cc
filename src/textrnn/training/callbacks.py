"""What a training run does besides training, as callbacks the loop calls at fixed points:

    on_train_begin(loop)             before the first step (after a resume has restored the loop)
    on_epoch_begin(loop)             before an epoch's first step (or its first remaining step, when resumed)
    on_step_end(loop, rows)          after every optimizer step; `rows` samples were in the batch
    on_epoch_trained(loop)           after an epoch's last step, or the step Ctrl-C stopped it at; before
                                     validation (`loop.interrupted` says which)
    on_epoch_end(loop, result)       after validation and the loop's own end-of-epoch decisions
    on_train_end(loop)               after the last epoch, with every weight up to date

A callback with state that a resumed run needs names itself (`name`) and returns it from `state_dict()` as
(tensors, JSON-able dict); `Checkpointing` stores it in each checkpoint and the loop hands it back through
`load_state_dict()`. A distributed run gives these only to the rank that logs and saves.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from ..errors import TextrnnError
from .config import EpochResult

if TYPE_CHECKING:
    from .checkpoints import Checkpointer
    from .loop import Loop

log = logging.getLogger("textrnn")
LOG_EVERY_STEPS = 25  # running metrics for the progress bar and TensorBoard


class Callback:
    name: str | None = None  # set by callbacks whose state goes into checkpoints

    def on_train_begin(self, loop: Loop) -> None: ...
    def on_epoch_begin(self, loop: Loop) -> None: ...
    def on_step_end(self, loop: Loop, rows: int) -> None: ...
    def on_epoch_trained(self, loop: Loop) -> None: ...
    def on_epoch_end(self, loop: Loop, result: EpochResult) -> None: ...
    def on_train_end(self, loop: Loop) -> None: ...

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {}, {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar per epoch (samples, running loss and accuracy) and one line per epoch."""

    def __init__(self):
        self.bar = None

    def on_train_begin(self, loop: Loop) -> None:
        if loop.resumed_from is not None:
            p = loop.position
            where = ("stopped early; more epochs would not continue it" if p.stopped_early
                     else "finished" if p.finished(loop.config.epochs)
                     else f"epoch {p.epoch}, after {p.step} of {loop.steps_per_epoch} steps")
            tqdm.write(f"resuming from {loop.resumed_from} ({where})")

    def on_epoch_begin(self, loop: Loop) -> None:
        p = loop.position
        self.bar = tqdm(total=loop.train_rows, initial=p.seen, unit="samples",
                        desc=f"epoch {p.epoch}/{loop.config.epochs}", dynamic_ncols=True, leave=True,
                        mininterval=0.1 if sys.stderr.isatty() else 5.0)  # logs get a line every 5 s, not a flood

    def on_step_end(self, loop: Loop, rows: int) -> None:
        self.bar.update(rows)
        if (loop.position.step - 1) % LOG_EVERY_STEPS == 0:
            running = loop.running()
            self.bar.set_postfix(loss=f"{running['loss']:.4f}", acc=f"{running['accuracy']:.4f}")

    def on_epoch_trained(self, loop: Loop) -> None:
        running = loop.running()
        self.bar.set_postfix(loss=f"{running['loss']:.4f}", acc=f"{running['accuracy']:.4f}")
        self.bar.close()

    def on_epoch_end(self, loop: Loop, result: EpochResult) -> None:
        val = (f", val_loss {result.val_loss:.4f}, val_accuracy {result.val_accuracy:.4f}"
               if result.val_accuracy is not None else "")
        tqdm.write(f"epoch {result.epoch}: loss {result.loss:.4f}, accuracy {result.accuracy:.4f}, "
                   f"{result.samples_per_s:,.0f} samples/s{val}")


def summary_writer(log_dir):
    """TensorBoard's writer for `log_dir`; a clear error where the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TextrnnError("TensorBoard logs need the tensorboard package: pip install 'textrnn[tensorboard]'"
                           ) from None
    return SummaryWriter(str(log_dir))


class TensorBoard(Callback):
    """Each epoch's metrics, and the running training metrics every 25 steps (as "step/..."), for TensorBoard."""

    def __init__(self, log_dir):
        self.writer = summary_writer(log_dir)

    def on_step_end(self, loop: Loop, rows: int) -> None:
        if (loop.position.step - 1) % LOG_EVERY_STEPS == 0:
            for name, value in loop.running().items():
                self.writer.add_scalar(f"step/{name}", value, loop.position.global_step)

    def on_epoch_end(self, loop: Loop, result: EpochResult) -> None:
        for name in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"):
            value = getattr(result, name)
            if value is not None:
                self.writer.add_scalar(name, value, result.epoch)
        self.writer.flush()

    def on_train_end(self, loop: Loop) -> None:
        self.close()

    def close(self) -> None:
        self.writer.close()


class GradualUnfreezing(Callback):
    """ULMFiT's gradual unfreezing: epoch 1 trains the top layer group alone (the head), each later epoch one
    more group from the top (`training.loop.layer_groups`), until all train. Where a run stands follows from its
    epoch, so a resumed run freezes exactly what the original did. Parameters frozen before the run (a frozen
    embedding) stay frozen."""

    def on_train_begin(self, loop: Loop) -> None:
        from .loop import layer_groups

        self.groups = layer_groups(loop.model)
        self.frozen_at_start = {id(p) for g in self.groups for p in g if not p.requires_grad}

    def on_epoch_begin(self, loop: Loop) -> None:
        training = loop.position.epoch  # the number of groups from the top that train this epoch
        for depth, group in enumerate(self.groups):
            for p in group:
                p.requires_grad_(depth < training and id(p) not in self.frozen_at_start)

    def on_train_end(self, loop: Loop) -> None:
        for group in self.groups:
            for p in group:
                p.requires_grad_(id(p) not in self.frozen_at_start)


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a better `monitor`, and put the best epoch's weights back at the end."""

    name = "early_stopping"

    def __init__(self, patience: int, monitor: str = "val_accuracy", verbose: bool = True):
        self.patience, self.monitor, self.verbose = patience, monitor, verbose
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.waited = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.monitor == "val_accuracy" else value < self.best_value

    def on_epoch_end(self, loop: Loop, result: EpochResult) -> None:
        if result.interrupted:
            return
        value = getattr(result, self.monitor)
        if self.improved(value):
            self.best_value, self.best_epoch, self.waited = value, result.epoch, 0
            self.best_weights = {k: v.detach().clone() for k, v in loop.current_weights().items()}
            return
        self.waited += 1
        if self.waited >= self.patience:
            loop.position.stopped_early = True
            if self.verbose:
                tqdm.write(f"early stopping: {self.monitor} has not improved for {self.waited} epoch(s)")

    def on_train_end(self, loop: Loop) -> None:
        if self.best_weights is None:
            return
        loop.model.load_state_dict(self.best_weights)  # copies into the existing tensors
        best = next(h for h in loop.history if h.epoch == self.best_epoch)
        best.best = True
        if self.verbose:
            tqdm.write(f"restored the weights of epoch {best.epoch} ({self.monitor} {self.best_value:.4f})")

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {k: v.detach().cpu().clone() for k, v in (self.best_weights or {}).items()}
        return tensors, {"best_value": self.best_value, "best_epoch": self.best_epoch, "waited": self.waited}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        self.best_value, self.best_epoch, self.waited = state["best_value"], state["best_epoch"], state["waited"]
        self.best_weights = tensors or None


class Checkpointing(Callback):
    """A checkpoint after every epoch, every `checkpointer.every_steps` steps and when Ctrl-C stops a run; a
    finished run keeps only its last one."""

    def __init__(self, checkpointer: Checkpointer):
        self.checkpointer = checkpointer

    def save(self, loop: Loop) -> None:
        self.checkpointer.save(loop.position.global_step, *loop.snapshot())

    def on_step_end(self, loop: Loop, rows: int) -> None:
        every = self.checkpointer.every_steps
        # the end of an epoch saves anyway, after validation
        if every and loop.position.global_step % every == 0 and loop.position.step < loop.steps_per_epoch:
            self.save(loop)

    def on_epoch_trained(self, loop: Loop) -> None:
        if loop.interrupted:  # before validation, which a resumed run will do in its own time
            self.save(loop)
            log.warning("a checkpoint to resume from is in %s", self.checkpointer.directory)

    def on_epoch_end(self, loop: Loop, result: EpochResult) -> None:
        if not result.interrupted:
            self.save(loop)

    def on_train_end(self, loop: Loop) -> None:
        if loop.position.finished(loop.config.epochs):
            self.checkpointer.prune(1)  # the final checkpoint is complete; those before it are no longer a fallback
