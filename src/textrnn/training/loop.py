"""The training loop: Adam, cross-entropy, accuracy; validation after each epoch, as the lesson does.

Read top to bottom: `fit` builds the optimizer and schedule, restores a checkpoint if it is given one, then
runs `train_epoch` and `end_epoch` until the epochs are done or a callback stops the run. Everything else a run
does (progress bars, TensorBoard, checkpoints, early stopping) is a callback (callbacks.py).

Ctrl-C stops after the current step; the model trained so far is kept, validated and returned, so the caller
can still save it. A checkpoint holds everything the loop's position depends on (weights, optimizer, RNGs, the
epoch's data order and running totals, the callbacks' state), so a resumed run takes exactly the steps the
original would have.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.batching import TokenizedCorpus, epoch_batches, iterate_batches, part_of
from ..errors import TextrnnError
from . import distributed
from .callbacks import Callback
from .config import EpochResult, TrainConfig, resolve_device
from .distributed import World
from .optim import FastAdam

log = logging.getLogger("textrnn")


# -- the parts a run is made of -----------------------------------------------------------------------------------
def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The classifier's parameters from the top down: head, each recurrent layer from the last, embedding (what
    discriminative learning rates and gradual unfreezing treat as one layer each)."""
    encoder = model.encoder
    if model.config.bidirectional:
        rnn_layers = [list(layer.parameters()) for layer in encoder.rnn]
    else:
        rnn_layers = [[p for n, p in encoder.rnn.named_parameters() if n.endswith(f"_l{i}")]
                      for i in range(model.config.layers)]
    return [list(model.head.parameters()), *reversed(rnn_layers), [encoder.embedding.weight]]


def configure_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    name = config.optimizer
    if name == "auto":
        # fine-tuning's per-layer rates and freezing need the dense optimizer's parameter groups
        fine_tuning = config.discriminative_lr or config.gradual_unfreezing
        name = "fast-adam" if device.type == "cpu" and not fine_tuning else "adam"
    embedding = model.embedding
    embedding.sparse = name != "adam"
    if name != "adam":
        return FastAdam(model.parameters(), embedding=embedding, lr=config.lr, catch_up=name == "fast-adam",
                        max_grad_norm=config.clip_norm, weight_decay=config.weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen embedding is left out
    if config.discriminative_lr:
        factor, kept = config.discriminative_lr, set(map(id, params))
        params = [{"params": [p for p in group if id(p) in kept], "lr": config.lr / factor ** depth}
                  for depth, group in enumerate(layer_groups(model))]
        params = [g for g in params if g["params"]]
    if config.weight_decay:
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=device.type == "cuda")
    return torch.optim.Adam(params, lr=config.lr, fused=device.type == "cuda")


def configure_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """(scheduler, when): `when` is "step" or "epoch"; (None, None) for a constant rate."""
    if config.lr_schedule == "linear":
        total = max(1, steps_per_epoch * config.epochs)
        warm = int(config.warmup * total)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total - step) / max(1, total - warm))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "step"
    if config.lr_schedule == "slanted":
        total = max(1, steps_per_epoch * config.epochs)
        cut = max(1, int((config.warmup or 0.1) * total))
        ratio = 32.0

        def slanted(step: int) -> float:
            p = step / cut if step < cut else 1 - (step - cut) / max(1, total - cut)
            return (1 + max(0.0, p) * (ratio - 1)) / ratio

        return torch.optim.lr_scheduler.LambdaLR(optimizer, slanted), "step"
    if config.lr_schedule == "plateau":
        mode = "max" if config.monitor == "val_accuracy" else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=1), "epoch"
    return None, None


class DeferredInterrupt:
    """Ctrl-C during training asks to stop after the current step instead of tearing through it.

    A step interrupted halfway (say, after the dense update and before the embedding's) would leave a state no
    checkpoint should hold; so the first SIGINT only sets `requested`, and the loop stops at the next step
    boundary. A second Ctrl-C raises KeyboardInterrupt at once, for a run that will not stop.

    In a distributed run the second SIGINT is ignored: a Ctrl-C reaches every worker twice, once from the
    terminal and once forwarded by torchrun's agent, which kills workers that have not stopped within 30 s.
    """

    def __init__(self, force_on_second: bool = True):
        self.requested = False
        self.force_on_second = force_on_second
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested and self.force_on_second:
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
class Position:
    """Where a run stands between steps: what a checkpoint records besides the tensors and callbacks."""

    epoch: int = 1  # the epoch being (or about to be) trained
    step: int = 0  # batches of that epoch already trained on
    global_step: int = 0
    epoch_rng: dict | None = None  # the data-order RNG as it was when this epoch drew its batches
    loss_sum: float = 0.0  # running totals of the epoch so far
    correct: int = 0
    seen: int = 0
    stopped_early: bool = False  # a callback ended the run (more epochs would not resume it)
    processes: int = 1  # the data-parallel processes the epoch's batches were drawn for (global batch = B x this)

    def finished(self, epochs: int) -> bool:
        return self.stopped_early or self.epoch > epochs


@dataclass
class Loop:
    """One run's moving parts, as the callbacks see them. `network` is what the steps call: the model itself, or
    the model under DistributedDataParallel in a distributed run of `world.size` processes."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    config: TrainConfig
    steps_per_epoch: int
    train_rows: int
    callbacks: list[Callback] = field(default_factory=list)
    position: Position = field(default_factory=Position)
    history: list[EpochResult] = field(default_factory=list)
    interrupted: bool = False
    resumed_from: Path | None = None
    network: nn.Module | None = None
    world: World = field(default_factory=World)

    def __post_init__(self):
        if self.network is None:
            self.network = self.model

    def running(self) -> dict[str, float]:
        """The epoch's running training loss and accuracy, and the current learning rate."""
        p = self.position
        return {"loss": p.loss_sum / max(p.seen, 1), "accuracy": p.correct / max(p.seen, 1),
                "lr": self.optimizer.param_groups[0]["lr"]}

    def current_weights(self) -> dict[str, torch.Tensor]:
        """The model's weights, every embedding row up to date (FastAdam applies skipped rows' moves lazily)."""
        if isinstance(self.optimizer, FastAdam):
            self.optimizer.catch_up_all()
        return self.model.state_dict()

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON state) of everything a resumed run needs: what `restore` reads back."""
        from .checkpoints import optimizer_state

        opt_tensors, opt_meta = optimizer_state(self.optimizer)
        tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        tensors.update({f"optimizer.{k}": v for k, v in opt_tensors.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and next(self.model.parameters()).is_cuda:
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        callbacks = {}
        for callback in self.callbacks:
            if callback.name:
                extra, callbacks[callback.name] = callback.state_dict()
                tensors.update({f"{callback.name}.{k}": v for k, v in extra.items()})
        state = {"position": asdict(self.position), "optimizer": opt_meta,
                 "history": [h.to_dict() for h in self.history], "callbacks": callbacks,
                 "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}
        return tensors, state

    def restore(self, checkpoint) -> None:
        """Put the run back where `checkpoint` (a `checkpoints.Checkpoint` of this run) left it."""
        from .checkpoints import load_optimizer_state

        try:
            self.model.load_state_dict(checkpoint.prefixed("model."))  # copies into the optimizer's flat views
        except RuntimeError as exc:
            raise TextrnnError(f"checkpoint {checkpoint.path} does not fit this model: {' '.join(str(exc).split())}")
        load_optimizer_state(self.optimizer, checkpoint.prefixed("optimizer."), checkpoint.state["optimizer"])
        if self.scheduler is not None and checkpoint.state.get("scheduler") is not None:
            self.scheduler.load_state_dict(checkpoint.state["scheduler"])
        torch.set_rng_state(checkpoint.tensors["rng.torch"])
        if "rng.cuda" in checkpoint.tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(checkpoint.tensors["rng.cuda"])
        self.history = [EpochResult.from_dict(h) for h in checkpoint.state["history"]]
        self.position = Position(**checkpoint.state["position"])
        self._check_processes(checkpoint.path)
        saved = checkpoint.state.get("callbacks", {})
        for callback in self.callbacks:
            if callback.name in saved:
                callback.load_state_dict(checkpoint.prefixed(f"{callback.name}."), saved[callback.name])
        self.resumed_from = checkpoint.path

    def _check_processes(self, where: Path) -> None:
        """A checkpoint resumes onto another number of processes only where the run's batches stay the same."""
        p, now = self.position, self.world.size
        if p.processes == now or p.finished(self.config.epochs):
            return
        if p.step > 0:
            raise TextrnnError(f"the checkpoint {where} stopped in the middle of an epoch drawn for {p.processes} "
                               f"process(es): resume it with {p.processes} (--nproc {p.processes}); a checkpoint "
                               f"written at the end of an epoch resumes on any number")
        if self.config.lr_schedule in ("linear", "slanted"):
            raise TextrnnError(f"the checkpoint {where} was trained with {p.processes} process(es) and a "
                               f"{self.config.lr_schedule} schedule over its steps; another number of processes "
                               f"makes other steps: resume it with --nproc {p.processes}")
        p.processes = now

    def call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)


def training_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """What a step descends: cross-entropy in float32 (bf16 autocast's logits included), towards targets smoothed
    by `label_smoothing`. Validation reports plain cross-entropy."""
    return nn.functional.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)


# -- one epoch ------------------------------------------------------------------------------------------------------
def train_epoch(loop: Loop, train: TokenizedCorpus, labels: torch.Tensor, rng: np.random.Generator,
                device: torch.device, interrupt: DeferredInterrupt) -> float:
    """Train from the position's step to the end of its epoch (or to Ctrl-C); the seconds it took."""
    model, optimizer, scheduler, config, p = loop.model, loop.optimizer, loop.scheduler, loop.config, loop.position
    step_schedule = scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    clip_here = config.clip_norm is not None and not isinstance(optimizer, FastAdam)  # FastAdam clips itself
    world = loop.world
    rng.bit_generator.state = p.epoch_rng  # a resumed epoch draws the same batches again
    model.train()
    totals = distributed.Totals(device) if world.distributed else None
    batches = (iterate_batches(train, config.batch_size, config.batching, rng, start=p.step) if totals is None
               else epoch_batches(train, config.batch_size * world.size, config.batching, rng)[p.step:])
    start = time.perf_counter()
    for step, batch in enumerate(batches, start=p.step):
        if totals is None:
            rows, tokens, lengths = batch
        else:  # one global batch per step; this rank trains on its slice
            global_rows = len(batch)
            rows = part_of(batch, (world.rank, world.size))
            tokens, lengths = train.batch(rows)
            torch.manual_seed(distributed.step_seed(config.seed, world.rank, p.global_step))
            if len(rows) == 0:  # a batch of fewer rows than processes: this rank still joins the step, weight 0
                tokens, lengths = torch.zeros(1, 1, dtype=torch.long), torch.ones(1, dtype=torch.long)
        n = len(rows)
        target = labels[rows].to(device, non_blocking=True)
        if not n:  # an empty rank's stand-in batch needs a stand-in label; its loss is weighted 0 below
            target = torch.zeros(1, dtype=torch.long, device=device)
        tokens = tokens.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            if config.adversarial:  # the network is the model's AdversarialObjective (see `fit`)
                logits, loss, moved_loss = loop.network(tokens, lengths, target)
            else:
                logits = loop.network(tokens, lengths)
        if config.adversarial:
            objective = loss + moved_loss  # what the step descends; `loss` alone is reported
        else:
            loss = objective = training_loss(logits, target, config.label_smoothing)
        if totals is not None:
            objective = objective * (distributed.loss_weight(n, global_rows, world) if n else 0.0)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if clip_here:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        if step_schedule:
            scheduler.step()

        correct = (logits.detach().argmax(1) == target).sum() if n else torch.zeros((), dtype=torch.long)
        if totals is None:
            p.loss_sum += loss.item() * n
            p.correct += int(correct)
            stop = interrupt.requested
        else:  # every rank keeps the whole batch's totals, and stops at the step where any rank was interrupted
            # (the agreed `stop`, not this rank's flag, which a signal may set after the all-reduce read it)
            loss_sum, correct, n, stop = totals.reduce(loss.detach() * n, correct, n, interrupt.requested)
            p.loss_sum += loss_sum
            p.correct += correct
        p.step, p.global_step, p.seen = step + 1, p.global_step + 1, p.seen + n
        loop.call("on_step_end", n)
        if stop:
            loop.interrupted = True
            break
    return time.perf_counter() - start


class AdversarialObjective(nn.Module):
    """A classifier's training loss with adversarial training on its embeddings (Miyato et al. 2017): returns the
    logits, the loss, and the loss again with each text's embedded tokens moved `epsilon` (L2 over the whole text)
    along the gradient of the loss, the direction that raises it most. The move is a constant; the gradient of the
    moved loss flows to the embedding rows and the network, as the paper's does. One module, so that under DDP a
    step is one forward and one backward (the inner gradient touches no weight's gradient)."""

    def __init__(self, model: nn.Module, epsilon: float, label_smoothing: float = 0.0):
        super().__init__()
        self.model, self.epsilon, self.label_smoothing = model, epsilon, label_smoothing

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor):
        embedded = self.model.encoder.embed(tokens)
        if not embedded.requires_grad:  # frozen vectors: the move still needs the gradient at the embedded tokens
            embedded.requires_grad_(True)
        bag = self.model.bag_of_ngrams(tokens, lengths)  # not moved: the move is on the recurrence's input
        logits = self.model.forward_embedded(embedded, lengths, bag)
        loss = training_loss(logits, target, self.label_smoothing)
        (grad,) = torch.autograd.grad(loss, embedded, retain_graph=True)
        norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12)  # padding has no gradient, so it is never moved
        shift = (self.epsilon * grad / norm[:, None, None]).detach()
        moved = self.model.forward_embedded(embedded + shift, lengths, bag)
        return logits, loss, training_loss(moved, target, self.label_smoothing)


def end_epoch(loop: Loop, seconds: float, rng: np.random.Generator,
              validation: tuple[TokenizedCorpus, np.ndarray] | None) -> EpochResult:
    """The epoch's result (validated), the plateau schedule's step, and the position moved to the next epoch."""
    p, world = loop.position, loop.world
    result = EpochResult(p.epoch, p.loss_sum / max(p.seen, 1), p.correct / max(p.seen, 1), p.seen, seconds,
                         interrupted=loop.interrupted, lr=loop.optimizer.param_groups[0]["lr"])
    if world.distributed and isinstance(loop.optimizer, FastAdam):
        loop.optimizer.catch_up_all()  # every rank, so that rank 0 reading the weights keeps the ranks in step
    if validation is not None:
        if world.main:
            result.val_loss, result.val_accuracy = evaluate_loss_accuracy(loop.model, *validation)
        # the others wait for rank 0's figures: the plateau schedule and early stopping act on them everywhere
        device = next(loop.model.parameters()).device
        result.val_loss, result.val_accuracy = distributed.broadcast_floats([result.val_loss, result.val_accuracy],
                                                                            world, device)
    loop.history.append(result)
    if loop.interrupted:
        return result  # the position stays mid-epoch: a resumed run finishes this epoch
    if isinstance(loop.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        loop.scheduler.step(getattr(result, loop.config.monitor))
    # the next epoch starts from the RNG as this one left it
    p.epoch, p.step, p.epoch_rng = p.epoch + 1, 0, rng.bit_generator.state
    p.loss_sum, p.correct, p.seen = 0.0, 0, 0
    return result


# -- the run --------------------------------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    train: TokenizedCorpus,
    train_labels: np.ndarray,
    config: TrainConfig,
    validation: tuple[TokenizedCorpus, np.ndarray] | None = None,
    callbacks: list[Callback] = (),
    resume=None,
) -> list[EpochResult]:
    """Train `model` in place; returns one result per epoch run.

    callbacks: see callbacks.py (progress bar, TensorBoard, checkpoints, early stopping), called in order.
    resume: a `checkpoints.Checkpoint` of this same run to continue from, exactly where it stood.
    """
    world, device = distributed.setup(resolve_device(config.device))
    distributed.check_supported(config, device, world)
    model.to(device)
    optimizer = configure_optimizer(model, config, device)
    if isinstance(optimizer, FastAdam):
        optimizer.catch_up_gradient_rows = world.distributed  # rows another rank read, see FastAdam.step
    # with adversarial training a step calls the model through its objective (DDP wraps what a step calls)
    stepped = (AdversarialObjective(model, config.adversarial, config.label_smoothing) if config.adversarial
               else model)
    network = distributed.wrap(stepped, device, world)
    steps_per_epoch = -(-len(train) // (config.batch_size * world.size))
    scheduler, schedule_every = configure_scheduler(optimizer, config, steps_per_epoch)
    if (config.early_stopping or schedule_every == "epoch") and validation is None:
        raise TextrnnError("early stopping and the plateau schedule watch a validation metric: give validation data")
    labels = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    rng = np.random.default_rng(config.seed)
    # a distributed run gives its callbacks (progress, logs, early stopping, checkpoints) to rank 0 alone
    loop = Loop(model, optimizer, scheduler, config, steps_per_epoch, len(train),
                list(callbacks) if world.main else [],
                Position(epoch_rng=rng.bit_generator.state, processes=world.size), network=network, world=world)
    if resume is not None:
        loop.restore(resume)

    loop.call("on_train_begin")
    with DeferredInterrupt(force_on_second=not world.distributed) as interrupt:
        while not loop.position.finished(config.epochs):
            loop.call("on_epoch_begin")
            seconds = train_epoch(loop, train, labels, rng, device, interrupt)
            if loop.interrupted and world.main:
                log.warning("interrupted: stopped epoch %d after %d samples; the model is kept",
                            loop.position.epoch, loop.position.seen)
            loop.call("on_epoch_trained")
            result = end_epoch(loop, seconds, rng, validation)
            loop.call("on_epoch_end", result)
            if world.distributed:  # rank 0's early stopping ends the run on every rank
                stopped = distributed.broadcast_floats([float(loop.position.stopped_early)], world, device)[0]
                loop.position.stopped_early = bool(stopped)
            if loop.interrupted:
                break
    if isinstance(optimizer, FastAdam):
        optimizer.flush()  # bring every embedding row up to date before anyone reads the weights
    loop.call("on_train_end")
    # rank 0's callbacks may have put back an earlier epoch's weights (early stopping): every rank ends with them
    distributed.broadcast_weights(model, world)
    return loop.history


# -- inference ------------------------------------------------------------------------------------------------------
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
