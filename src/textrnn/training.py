"""The training loop: Adam, cross-entropy, accuracy; validation after each epoch, as the lesson does.

Read top to bottom: pick the batches, run forward and backward, step, report, checkpoint. Ctrl-C stops after
the current step and checkpoints; the model trained so far is kept, validated and returned, so the caller can
still save it. A checkpoint holds everything the loop's position depends on (weights, optimizer, RNGs, the
epoch's data order and running totals), so a resumed run takes exactly the steps the original would have.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .batching import BATCHING_MODES, TokenizedCorpus, iterate_batches
from .errors import TextrnnError
from .optim import FastAdam

log = logging.getLogger("textrnn")

OPTIMIZERS = ("auto", "fast-adam", "lazy-adam", "adam")
PRECISIONS = ("fp32", "bf16")
LR_SCHEDULES = ("constant", "linear", "plateau")
MONITORS = ("val_accuracy", "val_loss")


@dataclass
class TrainConfig:
    batch_size: int = 32
    epochs: int = 1
    lr: float = 1e-3
    seed: int = 0
    batching: str = "bucket"  # or "sequential": the lesson's file order, each batch padded to its longest row
    device: str = "auto"
    # "fast-adam": FastAdam (optim.py), Adam with row-wise embedding updates, the fast CPU path;
    # "lazy-adam": the same without catching skipped rows up (SparseAdam's rule);
    # "adam": torch.optim.Adam, dense, exactly the lesson's;
    # "auto": fast-adam on the CPU, adam (fused) on CUDA, where the dense update is cheap.
    optimizer: str = "auto"
    # "bf16": autocast the model to bfloat16 (AMX on recent Intel CPUs, tensor cores on GPUs); "fp32": no autocast
    precision: str = "fp32"
    # scale the whole gradient down to this norm when it is larger (RNN gradients can explode); None: never
    clip_norm: float | None = None
    # decoupled weight decay (AdamW): every step shrinks every weight by lr * weight_decay of itself
    weight_decay: float = 0.0
    # "constant"; "linear": warm up over the first `warmup` fraction of steps, then decay to 0;
    # "plateau": halve the rate when the monitored validation metric stops improving
    lr_schedule: str = "constant"
    warmup: float = 0.0
    # stop after this many epochs without improvement of `monitor`, and restore the best epoch's weights
    early_stopping: int | None = None
    monitor: str = "val_accuracy"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise TextrnnError(f"batch size must be at least 1, got {self.batch_size}")
        if self.epochs < 1:
            raise TextrnnError(f"epochs must be at least 1, got {self.epochs}")
        if not self.lr > 0:
            raise TextrnnError(f"learning rate must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise TextrnnError(f"unknown optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.precision not in PRECISIONS:
            raise TextrnnError(f"unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.batching not in BATCHING_MODES:
            raise TextrnnError(f"unknown batching {self.batching!r}: choose one of {', '.join(BATCHING_MODES)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TextrnnError(f"unknown lr schedule {self.lr_schedule!r}: choose one of {', '.join(LR_SCHEDULES)}")
        if self.monitor not in MONITORS:
            raise TextrnnError(f"unknown metric {self.monitor!r} to monitor: choose one of {', '.join(MONITORS)}")
        if not self.weight_decay >= 0:
            raise TextrnnError(f"weight decay must be zero or positive, got {self.weight_decay}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise TextrnnError(f"clip norm must be positive, got {self.clip_norm}")
        if not 0.0 <= self.warmup < 1.0:
            raise TextrnnError(f"warmup is a fraction of the training steps in [0, 1), got {self.warmup}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise TextrnnError(f"early-stopping patience must be at least 1 epoch, got {self.early_stopping}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochResult:
    epoch: int
    loss: float
    accuracy: float
    samples: int
    seconds: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    interrupted: bool = False
    lr: float | None = None  # the learning rate at the end of the epoch
    best: bool = False  # the epoch whose weights early stopping kept

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "samples_per_s": self.samples_per_s}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TextrnnError(f"unknown device {name!r}: use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TextrnnError("--device cuda was asked for, but PyTorch sees no CUDA device here")
    return device


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    name = config.optimizer
    if name == "auto":
        name = "fast-adam" if device.type == "cpu" else "adam"
    embedding = model.embedding
    embedding.sparse = name != "adam"
    if name != "adam":
        return FastAdam(model.parameters(), embedding=embedding, lr=config.lr, catch_up=name == "fast-adam",
                        max_grad_norm=config.clip_norm, weight_decay=config.weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen embedding is left out
    if config.weight_decay:
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=device.type == "cuda")
    return torch.optim.Adam(params, lr=config.lr, fused=device.type == "cuda")


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """(scheduler, when): `when` is "step" or "epoch"; (None, None) for a constant rate."""
    if config.lr_schedule == "linear":
        total = max(1, steps_per_epoch * config.epochs)
        warm = int(config.warmup * total)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total - step) / max(1, total - warm))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "step"
    if config.lr_schedule == "plateau":
        mode = "max" if config.monitor == "val_accuracy" else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=1), "epoch"
    return None, None


def _improved(value: float, best: float | None, monitor: str) -> bool:
    return best is None or (value > best if monitor == "val_accuracy" else value < best)


class _DeferredInterrupt:
    """Ctrl-C during training asks to stop after the current step instead of tearing through it.

    A step interrupted halfway (say, after the dense update and before the embedding's) would leave a state no
    checkpoint should hold; so the first SIGINT only sets `requested`, and the loop stops at the next step
    boundary. A second Ctrl-C raises KeyboardInterrupt at once, for a run that will not stop.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


@dataclass
class _RunState:
    """Where a run stands between steps: what a checkpoint records besides the tensors."""

    epoch: int = 1  # the epoch being (or about to be) trained
    step: int = 0  # batches of that epoch already trained on
    global_step: int = 0
    epoch_rng: dict | None = None  # the data-order RNG as it was when this epoch drew its batches
    loss_sum: float = 0.0  # running totals of the epoch so far
    correct: int = 0
    seen: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    waited: int = 0
    stopped_early: bool = False  # early stopping ended the run (more epochs would not resume it)

    def finished(self, epochs: int) -> bool:
        return self.stopped_early or self.epoch > epochs


def _snapshot(model, optimizer, scheduler, run: _RunState, history, best_state) -> tuple[dict, dict]:
    from .checkpoint import optimizer_state

    opt_tensors, opt_meta = optimizer_state(optimizer)
    tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tensors.update({f"optimizer.{k}": v for k, v in opt_tensors.items()})
    if best_state is not None:
        tensors.update({f"best.{k}": v.detach().cpu().clone() for k, v in best_state.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    state = {"position": asdict(run), "optimizer": opt_meta, "history": [h.to_dict() for h in history],
             "scheduler": scheduler.state_dict() if scheduler is not None else None}
    return tensors, state


def _restore(checkpoint, model, optimizer, scheduler) -> tuple[_RunState, list[EpochResult], dict | None]:
    from .checkpoint import load_optimizer_state

    try:
        model.load_state_dict(checkpoint.prefixed("model."))  # copies into the optimizer's flat views
    except RuntimeError as exc:
        raise TextrnnError(f"checkpoint {checkpoint.path} does not fit this model: {' '.join(str(exc).split())}")
    load_optimizer_state(optimizer, checkpoint.prefixed("optimizer."), checkpoint.state["optimizer"])
    if scheduler is not None and checkpoint.state.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint.state["scheduler"])
    torch.set_rng_state(checkpoint.tensors["rng.torch"])
    if "rng.cuda" in checkpoint.tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(checkpoint.tensors["rng.cuda"])
    history = [EpochResult(**{k: v for k, v in h.items() if k != "samples_per_s"})
               for h in checkpoint.state["history"]]
    best = checkpoint.prefixed("best.") or None
    return _RunState(**checkpoint.state["position"]), history, best


def fit(
    model: nn.Module,
    train: TokenizedCorpus,
    train_labels: np.ndarray,
    config: TrainConfig,
    validation: tuple[TokenizedCorpus, np.ndarray] | None = None,
    progress: bool = True,
    checkpoints=None,
    resume=None,
    on_epoch_end: Callable[[EpochResult], None] | None = None,
    on_steps: Callable[[int, dict], None] | None = None,
) -> list[EpochResult]:
    """Train `model` in place; returns one result per epoch run.

    checkpoints: a `checkpoint.Checkpointer`: save at the end of every epoch, every `every_steps` steps and on
        Ctrl-C. resume: a `checkpoint.Checkpoint` of this same run to continue from, exactly where it stood.
    on_epoch_end: called with each epoch's result (TensorBoard logging, say); on_steps: called every 25 steps
        with the step number and the epoch's running loss, accuracy and learning rate.
    """
    from tqdm.auto import tqdm

    device = resolve_device(config.device)
    model.to(device)
    optimizer = make_optimizer(model, config, device)
    steps_per_epoch = -(-len(train) // config.batch_size)
    scheduler, schedule_every = make_scheduler(optimizer, config, steps_per_epoch)
    clip_here = config.clip_norm is not None and not isinstance(optimizer, FastAdam)  # FastAdam clips itself
    loss_fn = nn.CrossEntropyLoss()
    labels = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    rng = np.random.default_rng(config.seed)
    if (config.early_stopping or schedule_every == "epoch") and validation is None:
        raise TextrnnError("early stopping and the plateau schedule watch a validation metric: give validation data")
    run, history, best_state = _RunState(epoch_rng=rng.bit_generator.state), [], None
    if resume is not None:
        run, history, best_state = _restore(resume, model, optimizer, scheduler)
        if progress:
            where = ("stopped early; more epochs would not continue it" if run.stopped_early
                     else "finished" if run.finished(config.epochs)
                     else f"epoch {run.epoch}, after {run.step} of {steps_per_epoch} steps")
            tqdm.write(f"resuming from {resume.path} ({where})")

    def save_checkpoint() -> None:
        if checkpoints is not None:
            checkpoints.save(run.global_step, *_snapshot(model, optimizer, scheduler, run, history, best_state))

    every = checkpoints.every_steps if checkpoints is not None else None

    with _DeferredInterrupt() as interrupt:
        while not run.finished(config.epochs):
            epoch = run.epoch
            rng.bit_generator.state = run.epoch_rng  # a resumed epoch draws the same batches again
            model.train()
            interrupted = False
            bar = tqdm(total=len(train), initial=run.seen, unit="samples", desc=f"epoch {epoch}/{config.epochs}",
                       disable=not progress, dynamic_ncols=True, leave=True,
                       mininterval=0.1 if sys.stderr.isatty() else 5.0)  # logs get a line every 5 s, not a flood
            start = time.perf_counter()
            batches = iterate_batches(train, config.batch_size, config.batching, rng, start=run.step)
            for step, (rows, tokens, lengths) in enumerate(batches, start=run.step):
                target = labels[rows].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                    logits = model(tokens.to(device, non_blocking=True), lengths)
                loss = loss_fn(logits.float(), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_here:
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
                optimizer.step()
                if schedule_every == "step":
                    scheduler.step()

                n = len(rows)
                run.step, run.global_step, run.seen = step + 1, run.global_step + 1, run.seen + n
                run.loss_sum += loss.item() * n
                run.correct += int((logits.detach().argmax(1) == target).sum())
                bar.update(n)
                if step % 25 == 0:
                    bar.set_postfix(loss=f"{run.loss_sum / run.seen:.4f}", acc=f"{run.correct / run.seen:.4f}")
                    if on_steps is not None:
                        on_steps(run.global_step, {"loss": run.loss_sum / run.seen, "accuracy": run.correct / run.seen,
                                                   "lr": optimizer.param_groups[0]["lr"]})
                if interrupt.requested:
                    interrupted = True
                    break
                if every and run.global_step % every == 0 and run.step < steps_per_epoch:  # epoch ends save anyway
                    save_checkpoint()
            seconds = time.perf_counter() - start
            seen = run.seen
            epoch_loss, epoch_accuracy = run.loss_sum / max(seen, 1), run.correct / max(seen, 1)
            bar.set_postfix(loss=f"{epoch_loss:.4f}", acc=f"{epoch_accuracy:.4f}")
            bar.close()
            if interrupted:
                save_checkpoint()  # before validation, which a resumed run will do in its own time
                log.warning("interrupted: stopped epoch %d after %d samples; the model is kept%s", epoch, seen,
                            f", and a checkpoint to resume from is in {checkpoints.directory}" if checkpoints else "")

            result = EpochResult(epoch, epoch_loss, epoch_accuracy, seen, seconds, interrupted=interrupted,
                                 lr=optimizer.param_groups[0]["lr"])
            if validation is not None:
                result.val_loss, result.val_accuracy = evaluate_loss_accuracy(model, *validation)
            history.append(result)
            if progress:
                val = (f", val_loss {result.val_loss:.4f}, val_accuracy {result.val_accuracy:.4f}"
                       if result.val_accuracy is not None else "")
                tqdm.write(f"epoch {epoch}: loss {result.loss:.4f}, accuracy {result.accuracy:.4f}, "
                           f"{result.samples_per_s:,.0f} samples/s{val}")
            if on_epoch_end is not None:
                on_epoch_end(result)
            if interrupted:
                break
            if schedule_every == "epoch":
                scheduler.step(getattr(result, config.monitor))
            if config.early_stopping:
                value = getattr(result, config.monitor)
                if _improved(value, run.best_value, config.monitor):
                    run.best_value, run.best_epoch, run.waited = value, epoch, 0
                    if isinstance(optimizer, FastAdam):
                        optimizer.catch_up_all()  # the saved copy must hold every row up to date
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    run.waited += 1
                    if run.waited >= config.early_stopping:
                        run.stopped_early = True
                        if progress:
                            tqdm.write(f"early stopping: {config.monitor} has not improved for {run.waited} epoch(s)")
            # the next epoch starts from the RNG as this one left it
            run.epoch, run.step, run.epoch_rng = epoch + 1, 0, rng.bit_generator.state
            run.loss_sum, run.correct, run.seen = 0.0, 0, 0
            save_checkpoint()

    if checkpoints is not None and run.finished(config.epochs):
        checkpoints.prune(1)  # the final checkpoint is complete; the ones before it are no longer a fallback
    if isinstance(optimizer, FastAdam):
        optimizer.flush()  # bring every embedding row up to date before anyone reads the weights
    if best_state is not None:
        model.load_state_dict(best_state)  # copies into the existing tensors
        best = next(h for h in history if h.epoch == run.best_epoch)
        best.best = True
        if progress:
            tqdm.write(f"restored the weights of epoch {best.epoch} ({config.monitor} {run.best_value:.4f})")
    return history


@torch.no_grad()
def predict_logits(model: nn.Module, corpus: TokenizedCorpus, batch_size: int = 512) -> torch.Tensor:
    """Logits for every row, in the corpus's order. Rows are run sorted by length so batches carry no padding."""
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort(corpus.lengths, kind="stable")
    out = torch.empty(len(corpus), model.config.num_classes)
    for i in range(0, len(order), batch_size):
        rows = order[i : i + batch_size]
        tokens, lengths = corpus.batch(rows)
        out[torch.from_numpy(rows)] = model(tokens.to(device), lengths).float().cpu()
    return out


def evaluate_loss_accuracy(model: nn.Module, corpus: TokenizedCorpus, labels: np.ndarray) -> tuple[float, float]:
    logits = predict_logits(model, corpus)
    target = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    loss = nn.functional.cross_entropy(logits, target).item()
    accuracy = (logits.argmax(1) == target).double().mean().item()
    return loss, accuracy
