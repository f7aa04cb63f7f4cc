"""A run's per-epoch history as files in its model directory: history.csv and training.png."""

from __future__ import annotations

import csv

from .plots import plot_history

__all__ = ["plot_history", "write_history_csv"]


def write_history_csv(history: list[dict], path) -> None:
    """One row per epoch: loss, accuracy, validation metrics, learning rate, time."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
