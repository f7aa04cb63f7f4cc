"""Training a language model: truncated backpropagation through time over one stream of tokens.

The training texts become one stream (each text followed by the end-of-text id, 0, which is padding's id: a
classifier never sees it inside a text), cut into `batch_size` parallel rows. Each step reads a window of about
`bptt` steps from every row and predicts each next token; the state the window ends in starts the next window,
detached, so gradients flow through one window only. Window lengths vary around `bptt` (AWD-LSTM's trick, so
that every token is sometimes early and sometimes late in a window), with the learning rate scaled to the
window's length; the draws are seeded. Every epoch ends with the validation stream's loss and perplexity;
early stopping keeps the best epoch's weights, and Ctrl-C stops after the current window, keeping them too.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import TextrnnError
from ..models.language_model import RNNLanguageModel, detach_state
from . import distributed
from .config import PRECISIONS, resolve_device
from .loop import DeferredInterrupt

MIN_WINDOW = 5
log = logging.getLogger("textrnn")


@dataclass
class LMTrainConfig:
    batch_size: int = 32
    bptt: int = 70
    epochs: int = 5
    lr: float = 3e-3
    seed: int = 0
    device: str = "auto"
    clip_norm: float | None = 0.25
    weight_decay: float = 0.0
    early_stopping: int | None = 2  # epochs without a lower validation loss before stopping
    precision: str = "fp32"
    variable_bptt: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.bptt < 2 or self.epochs < 1:
            raise TextrnnError("batch size must be at least 1, bptt at least 2 and epochs at least 1")
        if not self.lr > 0:
            raise TextrnnError(f"learning rate must be positive, got {self.lr}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise TextrnnError(f"clip norm must be positive, got {self.clip_norm}")
        if self.precision not in PRECISIONS:
            raise TextrnnError(f"unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise TextrnnError(f"early-stopping patience must be at least 1 epoch, got {self.early_stopping}")

    def to_dict(self) -> dict:
        return asdict(self)


def token_stream(ids: np.ndarray, lengths: np.ndarray, end_id: int = 0) -> np.ndarray:
    """The texts' ids end to end, each text followed by `end_id`."""
    out = np.full(len(ids) + len(lengths), end_id, dtype=np.int64)
    ends = np.cumsum(lengths) + np.arange(1, len(lengths) + 1) - 1  # where each text's end marker goes
    keep = np.ones(len(out), dtype=bool)
    keep[ends] = False
    out[keep] = ids
    return out


def batchify(stream: np.ndarray, batch_size: int, bptt: int, what: str = "training") -> torch.Tensor:
    """(batch_size, n) rows of the stream side by side (the remainder dropped); each row must hold a whole
    window."""
    n = len(stream) // batch_size
    if n <= bptt:
        raise TextrnnError(f"the {what} text is {len(stream):,} tokens, shorter than one BPTT window for each of "
                           f"{batch_size} rows ({batch_size} x {bptt + 1} tokens): give more text, or lower "
                           "--batch-size or --bptt")
    return torch.from_numpy(stream[: n * batch_size].reshape(batch_size, n).copy())


def windows(length: int, bptt: int, rng: np.random.Generator | None) -> list[tuple[int, int]]:
    """(start, width) of each window over rows of `length` tokens (the last token is only a target)."""
    out, start = [], 0
    while start < length - 1:
        width = bptt
        if rng is not None:
            base = bptt if rng.random() < 0.95 else bptt / 2
            width = max(MIN_WINDOW, int(rng.normal(base, 5)))
        width = min(width, length - 1 - start)
        out.append((start, width))
        start += width
    return out


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def evaluate_lm_loss(model: RNNLanguageModel, rows: torch.Tensor, bptt: int = 70, precision: str = "fp32") -> float:
    """Mean cross-entropy in nats per predicted token over `rows` (batch, n), the state carried across windows."""
    model.eval()
    device = next(model.parameters()).device
    total, count, state = 0.0, 0, None
    for start, width in windows(rows.shape[1], bptt, None):
        x = rows[:, start : start + width].to(device)
        y = rows[:, start + 1 : start + 1 + width].to(device)
        with _autocast(device, precision):
            outputs, state = model(x, state)
        loss = model.loss(outputs.float(), y)
        total += float(loss) * y.numel()
        count += y.numel()
    return total / max(count, 1)


@dataclass
class LMPosition:
    """Where a language-model run stands between windows: what its checkpoints record besides tensors."""

    epoch: int = 1
    window: int = 0  # windows of this epoch already trained on
    global_step: int = 0
    epoch_rng: dict | None = None  # the window-length RNG as this epoch found it (its plan is drawn from it)
    best_loss: float = math.inf
    stale: int = 0  # epochs since the best validation loss
    stopped_early: bool = False
    processes: int = 1  # the data-parallel processes the stream's rows were cut for (batch_size x this rows)


class WindowLoss(torch.nn.Module):
    """A window's mean loss and the state it ends in, as one module's forward: what DistributedDataParallel
    wraps, so that the softmax's weights take part in the step it averages."""

    def __init__(self, model: RNNLanguageModel, precision: str):
        super().__init__()
        self.model, self.precision = model, precision

    def forward(self, x: torch.Tensor, y: torch.Tensor, state: list | None) -> tuple[torch.Tensor, list]:
        with _autocast(x.device, self.precision):  # the recurrence; the softmax runs in fp32
            outputs, state = self.model(x, state)
        return self.model.loss(outputs.float(), y), state


class LMTensorBoard:
    """A language-model run's metrics for TensorBoard: each epoch's perplexities and losses, and the window
    loss every 25 windows (as "step/loss")."""

    def __init__(self, log_dir):
        from .callbacks import summary_writer

        self.writer = summary_writer(log_dir)

    def on_window_end(self, position: "LMPosition", loss: torch.Tensor, lr: float) -> None:
        if position.global_step % 25 == 1:
            self.writer.add_scalar("step/loss", float(loss.detach()), position.global_step)
            self.writer.add_scalar("step/lr", lr, position.global_step)

    def on_epoch_end(self, position: "LMPosition", result: dict) -> None:
        for name in ("loss", "perplexity", "val_loss", "val_perplexity", "tokens_per_s"):
            if name in result:
                self.writer.add_scalar(name, result[name], result["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _state_tensors(state: list | None) -> dict[str, torch.Tensor]:
    if state is None:
        return {}
    out = {}
    for i, s in enumerate(state):
        for j, t in enumerate(s if isinstance(s, tuple) else (s,)):
            out[f"carried.{i}.{j}"] = t.detach().cpu().clone()
    return out


def _state_from(tensors: dict[str, torch.Tensor], layers: int, device: torch.device,
                rows: slice = slice(None)) -> list | None:
    """The carried state a checkpoint holds, for the stream's `rows` (this rank's, in a distributed run)."""
    if not tensors:
        return None
    state = []
    for i in range(layers):
        parts = [tensors[f"{i}.{j}"][:, rows].to(device) for j in range(2) if f"{i}.{j}" in tensors]
        state.append(tuple(parts) if len(parts) == 2 else parts[0])
    return state


def _gather_state(state: list | None, world) -> list | None:
    """Every rank's carried state joined along the batch (rows of the stream), for a checkpoint."""
    if state is None or not world.distributed:
        return state
    return [tuple(distributed.gather_batch(t, world, 1) for t in s) if isinstance(s, tuple)
            else distributed.gather_batch(s, world, 1) for s in state]


def fit_language_model(model: RNNLanguageModel, train: np.ndarray, validation: np.ndarray | None,
                       config: LMTrainConfig, progress: bool = True, checkpointer=None,
                       resume=None, callbacks: Sequence = ()) -> list[dict]:
    """Train on the token stream `train`; validate on `validation` after every epoch. Returns the history (one
    dict per epoch); the model ends with the best epoch's weights when early stopping is on.

    checkpointer: a `checkpoints.Checkpointer`: a checkpoint after every epoch, every `every_steps` windows and
    on Ctrl-C. resume: a `checkpoints.Checkpoint` of this run to continue from, exactly where it stood (weights,
    Adam's moments, the carried state, the RNGs, the window plan), so the result is the uninterrupted run's.
    callbacks: objects with `on_window_end(position, loss, lr)` and `on_epoch_end(position, result)` (such as
    `LMTensorBoard`), called in order.
    """
    from .checkpoints import load_optimizer_state, optimizer_state

    world, device = distributed.setup(resolve_device(config.device))
    model.to(device)
    # a distributed run cuts the stream into batch_size rows per process; each trains on its own rows
    rows = batchify(train, config.batch_size * world.size, config.bptt)
    mine = slice(world.rank * config.batch_size, (world.rank + 1) * config.batch_size)
    rows = rows[mine]
    network = distributed.wrap(WindowLoss(model, config.precision), device, world,
                               find_unused=model.config.softmax == "adaptive")
    progress = progress and world.main
    val_rows = batchify(validation, min(config.batch_size, 10), config.bptt, "validation") \
        if validation is not None else None
    decay = [p for p in model.parameters() if p.ndim >= 2]  # matrices; biases are not decayed
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    p = LMPosition(epoch_rng=rng.bit_generator.state, processes=world.size)
    history, best_state, carried = [], None, None
    if resume is not None:
        saved = resume.state
        model.load_state_dict(resume.prefixed("model."))
        load_optimizer_state(optimizer, resume.prefixed("optimizer."), saved["optimizer"])
        torch.set_rng_state(resume.tensors["rng.torch"])
        p, history = LMPosition(**saved["position"]), saved["history"]
        if p.processes != world.size and p.window > 0:
            raise TextrnnError(f"the checkpoint {resume.path} stopped in the middle of an epoch cut for {p.processes} "
                               f"process(es): resume it with {p.processes} (--nproc {p.processes}); a checkpoint "
                               "written at the end of an epoch resumes on any number")
        p.processes = world.size
        best_state = resume.prefixed("best.") or None
        carried = _state_from(resume.prefixed("carried."), model.config.layers, device, mine)
        if progress:
            tqdm.write(f"resuming from {resume.path} (epoch {p.epoch}, after {p.window} windows)", file=sys.stderr)

    def save_checkpoint(state) -> None:
        state = _gather_state(state, world)  # a collective: every rank takes part, rank 0 writes
        if not world.main:
            return
        tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
        opt_tensors, opt_meta = optimizer_state(optimizer)
        tensors.update({f"optimizer.{k}": v for k, v in opt_tensors.items()})
        tensors.update({f"best.{k}": v.detach().cpu().clone() for k, v in (best_state or {}).items()})
        tensors.update(_state_tensors(state))
        tensors["rng.torch"] = torch.get_rng_state()
        checkpointer.save(p.global_step, tensors, {"position": asdict(p), "optimizer": opt_meta,
                                                   "history": history})

    every = checkpointer.every_steps if checkpointer is not None else None
    with DeferredInterrupt(force_on_second=not world.distributed) as interrupt:
        while p.epoch <= config.epochs and not p.stopped_early:
            rng.bit_generator.state = p.epoch_rng  # the same plan again when an epoch is resumed
            plan = windows(rows.shape[1], config.bptt, rng if config.variable_bptt else None)
            next_epoch_rng = rng.bit_generator.state
            model.train()
            done = sum(w for _, w in plan[: p.window]) * rows.shape[0]
            done *= world.size
            bar = tqdm(total=(rows.shape[1] - 1) * rows.shape[0] * world.size, initial=done, unit="tok",
                       unit_scale=True,
                       desc=f"epoch {p.epoch}/{config.epochs}", disable=not progress, dynamic_ncols=True,
                       mininterval=0.1 if sys.stderr.isatty() else 5.0)
            started, state, tokens, stop = time.perf_counter(), carried, 0, False
            carried = None
            for step in range(p.window, len(plan)):
                start, width = plan[step]
                x = rows[:, start : start + width].to(device)
                y = rows[:, start + 1 : start + 1 + width].to(device)
                for group in optimizer.param_groups:  # a longer window moves the weights further
                    group["lr"] = config.lr * width / config.bptt
                if state is not None:
                    state = detach_state(state)
                if world.distributed:  # dropout masks that a resumed run draws again on every rank
                    torch.manual_seed(distributed.step_seed(config.seed, world.rank, p.global_step))
                loss, state = network(x, y, state)  # every rank's rows are as many: DDP's mean is the batch's
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
                if config.weight_decay:
                    with torch.no_grad():  # decoupled (AdamW's): shrink every matrix by lr * weight_decay of itself
                        for w in decay:
                            w.mul_(1 - optimizer.param_groups[0]["lr"] * config.weight_decay)
                optimizer.step()
                p.window, p.global_step = step + 1, p.global_step + 1
                for callback in callbacks if world.main else ():
                    callback.on_window_end(p, loss, optimizer.param_groups[0]["lr"])
                if step % 20 == 0:  # one host sync every 20 windows, not every window
                    value = float(loss.detach())
                    bar.set_postfix(loss=f"{value:.3f}", ppl=f"{math.exp(min(value, 50)):.1f}")
                tokens += y.numel() * world.size
                bar.update(y.numel() * world.size)
                # every rank stops at the window where any rank was interrupted
                stop = distributed.any_rank(interrupt.requested, world, device)
                if checkpointer is not None and p.window < len(plan) and (
                        stop or (every and p.global_step % every == 0)):
                    save_checkpoint(state)
                if stop:
                    interrupt.requested = True
                    break
            bar.close()
            if stop and p.window < len(plan):
                if world.main:
                    log.warning("interrupted: stopped epoch %d after %d of %d windows; the model is kept "
                                "(continue with --resume)", p.epoch, p.window, len(plan))
                break
            seconds = time.perf_counter() - started
            # the training perplexity, without dropout, on the stream's first 20 windows (all of it would cost
            # a third of an epoch)
            # (rank 0 alone, on its rows, and validation too; the others wait for its figures)
            train_loss = val_loss = None
            if world.main:
                train_loss = evaluate_lm_loss(model, rows[:, : min(rows.shape[1], 20 * config.bptt + 1)],
                                              config.bptt, config.precision)
                if val_rows is not None:
                    val_loss = evaluate_lm_loss(model, val_rows, config.bptt, config.precision)
            train_loss, val_loss = distributed.broadcast_floats([train_loss, val_loss], world, device)
            result = {"epoch": p.epoch, "loss": train_loss, "perplexity": math.exp(train_loss), "tokens": tokens,
                      "seconds": seconds, "tokens_per_s": tokens / seconds if seconds else 0.0, "best": False}
            if val_rows is not None:
                result.update(val_loss=val_loss, val_perplexity=math.exp(val_loss))
                if val_loss < p.best_loss:
                    p.best_loss, p.stale = val_loss, 0
                    best_state = copy.deepcopy(model.state_dict()) if config.early_stopping else None
                    for h in history:
                        h["best"] = False
                    result["best"] = True
                else:
                    p.stale += 1
            history.append(result)
            for callback in callbacks if world.main else ():
                callback.on_epoch_end(p, result)
            if progress:
                val = (f", validation perplexity {result['val_perplexity']:.2f}" if "val_perplexity" in result
                       else "")
                tqdm.write(f"epoch {p.epoch}: training perplexity {result['perplexity']:.2f}{val}, "
                           f"{result['tokens_per_s']:,.0f} tokens/s", file=sys.stderr)
            p.stopped_early = bool(config.early_stopping and p.stale >= config.early_stopping)
            p.epoch, p.window, p.epoch_rng = p.epoch + 1, 0, next_epoch_rng
            if checkpointer is not None:
                save_checkpoint(None)
            if distributed.any_rank(interrupt.requested, world, device):
                break
    if checkpointer is not None and world.main and (p.epoch > config.epochs or p.stopped_early):
        checkpointer.prune(1)  # a finished run keeps its last checkpoint only
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
