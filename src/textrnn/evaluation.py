"""Metrics for a trained classifier on labelled texts, computed by scikit-learn."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def evaluate(classifier, texts: Sequence[str], labels: Sequence) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    `labels` are class names or integer ids in the classifier's `classes_` order.
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    unseen: dict[str, int] = {}
    y_true, _ = classifier._encode_labels(labels, classifier.classes_, unseen=unseen)
    known = y_true >= 0  # rows whose label the model never saw are counted, not scored
    texts = [t for t, k in zip(texts, known) if k]
    y_true = y_true[known]
    proba = classifier.predict_proba(texts)
    y_pred = proba.argmax(1)
    ids = list(range(len(classifier.classes_)))
    report = classification_report(y_true, y_pred, labels=ids, target_names=classifier.classes_,
                                   output_dict=True, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {name: {k: float(v) for k, v in report[name].items()} for name in classifier.classes_},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(classifier.classes_),
        "unseen_labels": dict(sorted(unseen.items())),
    }


def format_metrics(metrics: dict[str, Any]) -> str:
    """A plain-text report: headline numbers, per-class table, confusion matrix."""
    names = metrics["labels"]
    width = max(12, max(len(n) for n in names) + 2)
    lines = [f"accuracy  {metrics['accuracy']:.4f}   macro-F1  {metrics['macro_f1']:.4f}   "
             f"({metrics['n']:,} texts)", ""]
    if metrics.get("unseen_labels"):
        unseen = ", ".join(f"{name} ({count:,})" for name, count in metrics["unseen_labels"].items())
        lines[-1:] = [f"not scored: labels the model never saw: {unseen}", ""]
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name in names:
        row = metrics["per_class"][name]
        lines.append(f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1-score']:>10.4f}"
                     f"{int(row['support']):>10,}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    cm = np.asarray(metrics["confusion_matrix"])
    cell = max(7, len(str(cm.max())) + 2)
    lines.append(" " * width + "".join(f"{n[:cell - 1]:>{cell}}" for n in names))
    for name, row in zip(names, cm):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def write_report(metrics: dict[str, Any], directory) -> list[str]:
    """metrics.json, report.txt and (with matplotlib) confusion_matrix.png in `directory`; the names written."""
    import json
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (directory / "report.txt").write_text(format_metrics(metrics) + "\n")
    written = ["metrics.json", "report.txt"]
    if plot_confusion_matrix(metrics, directory / "confusion_matrix.png"):
        written.append("confusion_matrix.png")
    return written


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None when the `plots` extra is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(metrics: dict[str, Any], path) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    cm = np.asarray(metrics["confusion_matrix"])
    names = metrics["labels"]
    size = 1.2 + 0.9 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
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
    plt.close(fig)
    return True


def plot_history(history: list[dict], path) -> bool:
    """Loss and accuracy per epoch, training and validation, side by side."""
    plt = _pyplot()
    if plt is None or not history:
        return False
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
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
    plt.close(fig)
    return True


def compare_runs(directories) -> list[dict[str, Any]]:
    """One summary per model directory: data, model, training, the kept epoch's validation metrics, and the test
    metrics when `textrnn evaluate RUN --out RUN` wrote metrics.json there."""
    import json
    from pathlib import Path

    from .errors import TextrnnError
    from .models import CELL_NAMES

    rows = []
    for directory in map(Path, directories):
        config_path = directory / "config.json"
        if not config_path.is_file():
            raise TextrnnError(f"{directory} is not a textrnn model directory: config.json is missing")
        try:
            config = json.loads(config_path.read_text())
            model, params, history = config["model"], config.get("params", {}), config.get("history", [])
        except (json.JSONDecodeError, KeyError) as exc:
            raise TextrnnError(f"{config_path} is not a valid textrnn config: {exc}") from None
        kept = next((h for h in history if h.get("best")), history[-1] if history else {})
        cell = CELL_NAMES.get(model.get("cell"), model.get("cell"))
        shape = f"{'Bi' if model.get('bidirectional') else ''}{cell} {model.get('layers')}x{model.get('hidden_size')}"
        row = {
            "run": directory.name,
            "dataset": config.get("metadata", {}).get("dataset"),
            "model": f"{shape}, emb {model.get('embedding_dim')}",
            "tokenizer": config.get("vectorizer", {}).get("type", "word"),
            "embeddings": params.get("embeddings") or "random",
            "epochs run": len(history),
            "kept epoch": kept.get("epoch"),
            "train loss": kept.get("loss"),
            "val loss": kept.get("val_loss"),
            "val accuracy": kept.get("val_accuracy"),
            "samples/s": (sum(h["samples"] for h in history) / max(sum(h["seconds"] for h in history), 1e-9)
                          if history else None),
            "train seconds": sum(h["seconds"] for h in history) if history else None,
        }
        metrics_path = directory / "metrics.json"
        if metrics_path.is_file():
            metrics = json.loads(metrics_path.read_text())
            row["test accuracy"] = metrics.get("accuracy")
            row["test macro-F1"] = metrics.get("macro_f1")
        rows.append(row)
    return rows


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """Runs as columns, fields as rows; the best validation and test accuracy marked with *."""
    fields = list(dict.fromkeys(k for row in rows for k in row))

    def cell(key, value):
        if value is None:
            return "-"
        if isinstance(value, float):
            if key in ("samples/s", "train seconds"):
                return f"{value:,.0f}" if key == "samples/s" else f"{value:,.1f}"
            return f"{value:.4f}"
        return str(value)

    best = {}
    for key in ("val accuracy", "test accuracy", "test macro-F1"):
        values = [row.get(key) for row in rows if row.get(key) is not None]
        if len(values) > 1:
            best[key] = max(values)
    table = [[key] + [cell(key, row.get(key)) + ("*" if key in best and row.get(key) == best[key] else "")
                      for row in rows] for key in fields]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in table)
