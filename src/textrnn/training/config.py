"""What a training run is told (`TrainConfig`) and what each epoch reports (`EpochResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..data.batching import BATCHING_MODES
from ..errors import TextrnnError

OPTIMIZERS = ("auto", "fast-adam", "lazy-adam", "adam")
PRECISIONS = ("fp32", "bf16")
LR_SCHEDULES = ("constant", "linear", "plateau", "slanted")
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
    # "slanted": ULMFiT's slanted triangular rate: up from lr/32 over the first `warmup` fraction of steps (0.1
    # when unset), then down to lr/32
    lr_schedule: str = "constant"
    warmup: float = 0.0
    # ULMFiT's fine-tuning (Howard & Ruder 2018): each layer below the head learns at the rate of the one above
    # divided by `discriminative_lr` (2.6 in the paper); with `gradual_unfreezing`, epoch 1 trains the head
    # alone, each later epoch one more layer from the top, the embedding last
    discriminative_lr: float | None = None
    gradual_unfreezing: bool = False
    # stop after this many epochs without improvement of `monitor`, and restore the best epoch's weights
    early_stopping: int | None = None
    monitor: str = "val_accuracy"
    # adversarial training on the embeddings (Miyato et al. 2017): each step adds the loss at every text's
    # embedded tokens moved by this L2 distance (over the whole text) the way that raises its loss most; 0: off
    adversarial: float = 0.0
    # the training loss's targets put this share of their weight evenly on every class (Szegedy et al. 2016);
    # validation loss is always plain cross-entropy
    label_smoothing: float = 0.0

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
        if not self.adversarial >= 0:
            raise TextrnnError(f"the adversarial perturbation is a distance, zero or positive, got {self.adversarial}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise TextrnnError(f"label smoothing is a share of each target in [0, 1), got {self.label_smoothing}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise TextrnnError(f"early-stopping patience must be at least 1 epoch, got {self.early_stopping}")
        if self.discriminative_lr is not None and not self.discriminative_lr >= 1:
            raise TextrnnError(f"the discriminative learning-rate factor must be 1 or more, got "
                               f"{self.discriminative_lr}")
        if (self.discriminative_lr or self.gradual_unfreezing) and self.optimizer not in ("adam", "auto"):
            raise TextrnnError("discriminative learning rates and gradual unfreezing train with optimizer 'adam' (or "
                               f"'auto'), not {self.optimizer!r}")

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

    @classmethod
    def from_dict(cls, record: dict) -> "EpochResult":
        return cls(**{k: v for k, v in record.items() if k != "samples_per_s"})


def kept_epoch(history: list[EpochResult]) -> EpochResult:
    """The epoch whose weights a run kept: the best one where early stopping restored it, else the last."""
    return next((h for h in history if h.best), history[-1])


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
