"""Metrics for a trained classifier on labelled texts, computed by scikit-learn."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data import encode_labels

from .plots import plot_confusion_matrix

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.txt"
CONFUSION_FILE = "confusion_matrix.png"


def evaluate(classifier, texts: Sequence[str], labels: Sequence) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    `labels` are class names or integer ids in the classifier's `classes_` order.
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    unseen: dict[str, int] = {}
    y_true, _ = encode_labels(labels, classifier.classes_, unseen=unseen)
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
    """metrics.json, report.txt and confusion_matrix.png in `directory`; the names written."""
    import json
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    (directory / REPORT_FILE).write_text(format_metrics(metrics) + "\n")
    plot_confusion_matrix(metrics, directory / CONFUSION_FILE)
    return [METRICS_FILE, REPORT_FILE, CONFUSION_FILE]


