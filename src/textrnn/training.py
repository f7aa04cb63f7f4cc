"""The training loop: Adam, cross-entropy, accuracy; validation after each epoch, as the lesson does.

Read top to bottom: pick the batches, run forward and backward, step, report. Ctrl-C ends the current epoch
early; the model trained so far is kept, validated and returned, so the caller can still save it.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass

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
                        max_grad_norm=config.clip_norm)
    return torch.optim.Adam(model.parameters(), lr=config.lr, fused=device.type == "cuda")


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


def fit(
    model: nn.Module,
    train: TokenizedCorpus,
    train_labels: np.ndarray,
    config: TrainConfig,
    validation: tuple[TokenizedCorpus, np.ndarray] | None = None,
    progress: bool = True,
) -> list[EpochResult]:
    """Train `model` in place; returns one result per epoch run."""
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
    history: list[EpochResult] = []
    best_value, best_state, best_epoch, waited = None, None, None, 0
    if (config.early_stopping or schedule_every == "epoch") and validation is None:
        raise TextrnnError("early stopping and the plateau schedule watch a validation metric: give validation data")

    for epoch in range(1, config.epochs + 1):
        model.train()
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.long)
        seen = 0
        interrupted = False
        bar = tqdm(total=len(train), unit="samples", desc=f"epoch {epoch}/{config.epochs}",
                   disable=not progress, dynamic_ncols=True, leave=True,
                   mininterval=0.1 if sys.stderr.isatty() else 5.0)  # logs get a line every 5 s, not a flood
        start = time.perf_counter()
        try:
            batches = iterate_batches(train, config.batch_size, config.batching, rng)
            for step, (rows, tokens, lengths) in enumerate(batches):
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
                seen += n
                total_loss += loss.detach().double().cpu() * n
                correct += (logits.detach().argmax(1) == target).sum().cpu()
                bar.update(n)
                if step % 25 == 0:
                    bar.set_postfix(loss=f"{total_loss.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: ending epoch %d early after %d samples; the model is kept", epoch, seen)
        seconds = time.perf_counter() - start
        bar.set_postfix(loss=f"{total_loss.item() / max(seen, 1):.4f}", acc=f"{correct.item() / max(seen, 1):.4f}")
        bar.close()

        result = EpochResult(epoch, total_loss.item() / max(seen, 1), correct.item() / max(seen, 1), seen, seconds,
                             interrupted=interrupted, lr=optimizer.param_groups[0]["lr"])
        if validation is not None:
            result.val_loss, result.val_accuracy = evaluate_loss_accuracy(model, *validation)
        history.append(result)
        if progress:
            val = (f", val_loss {result.val_loss:.4f}, val_accuracy {result.val_accuracy:.4f}"
                   if result.val_accuracy is not None else "")
            tqdm.write(f"epoch {epoch}: loss {result.loss:.4f}, accuracy {result.accuracy:.4f}, "
                       f"{result.samples_per_s:,.0f} samples/s{val}")
        if interrupted:
            break
        if schedule_every == "epoch":
            scheduler.step(getattr(result, config.monitor))
        if config.early_stopping:
            value = getattr(result, config.monitor)
            if _improved(value, best_value, config.monitor):
                best_value, best_epoch, waited = value, result, 0
                if isinstance(optimizer, FastAdam):
                    optimizer.flush()  # the saved copy must hold every row up to date
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                if waited >= config.early_stopping:
                    if progress:
                        tqdm.write(f"early stopping: {config.monitor} has not improved for {waited} epoch(s)")
                    break
    if isinstance(optimizer, FastAdam):
        optimizer.flush()  # bring every embedding row up to date before anyone reads the weights
    if best_state is not None:
        model.load_state_dict(best_state)  # copies into the existing tensors
        best_epoch.best = True
        if progress:
            tqdm.write(f"restored the weights of epoch {best_epoch.epoch} ({config.monitor} {best_value:.4f})")
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
