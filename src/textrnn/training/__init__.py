"""Training: the loop, its callbacks, checkpoints and the optimizer."""

from .callbacks import Callback, Checkpointing, EarlyStopping, GradualUnfreezing, ProgressBar, TensorBoard
from ..model_files import CHECKPOINTS_DIR
from .checkpoints import (Checkpoint, Checkpointer, checkpoint_to_resume, hyperparameter_names, read_checkpoint,
                          recordable_params)
from .config import EpochResult, TrainConfig, kept_epoch, resolve_device
from .loop import evaluate_loss_accuracy, fit, predict_logits
from .optim import FastAdam

__all__ = ["CHECKPOINTS_DIR", "Callback", "Checkpoint", "Checkpointer", "Checkpointing", "EarlyStopping",
           "EpochResult", "FastAdam", "GradualUnfreezing", "ProgressBar", "TensorBoard", "TrainConfig",
           "checkpoint_to_resume", "evaluate_loss_accuracy", "fit", "hyperparameter_names", "kept_epoch",
           "predict_logits", "read_checkpoint", "recordable_params", "resolve_device"]
