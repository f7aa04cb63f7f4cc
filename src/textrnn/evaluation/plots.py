"""Pictures of a run and of an evaluation, as PNG files: training curves and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np


def _figure(width: float, height: float, columns: int = 1):
    """A figure drawn off screen. `Figure` directly, not pyplot: pyplot would pick (or switch) a GUI backend
    and keep the figure in its global registry; a library drawing a PNG should touch neither."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(1, columns)


def plot_confusion_matrix(metrics: dict[str, Any], path) -> None:
    cm = np.asarray(metrics["confusion_matrix"])
    names = metrics["labels"]
    size = 1.2 + 0.9 * len(names)
    fig, ax = _figure(size + 1.5, size)
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {metrics['accuracy']:.4f}, {metrics['n']:,} texts")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]:,}", ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_history(history: list[dict], path) -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = _figure(10, 4, columns=2)
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.plot(epochs, [h[key] for h in history], marker="o", label="training")
        if history[0].get(f"val_{key}") is not None:
            ax.plot(epochs, [h[f"val_{key}"] for h in history], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
