"""`textrnn lesson`: the lesson's four experiments, run the lesson's way, beside its published numbers.

"The lesson's way" means its hyperparameters (presets.py), one epoch, the vocabulary adapted on the first
2,000 training titles, and its batching: rows in file order, each batch padded at the end to its longest row,
the unmasked models reading that padding. That keeps the accuracies comparable with the published ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data import Dataset
from ..estimator import TextClassifier
from .presets import PRESETS, Preset


def run_experiment(preset: Preset, dataset: Dataset, seed: int = 0, progress: bool = True,
                   fast: bool = False) -> tuple[TextClassifier, dict[str, Any]]:
    """One experiment, the lesson's way (file-order padded batches, dense Adam), or with `fast` textrnn's
    defaults (length-bucketed batches, row-wise embedding updates)."""
    how = dict(batching="bucket", optimizer="auto") if fast else dict(batching="sequential", optimizer="adam")
    clf = TextClassifier(**preset.params, adapt_limit=preset.adapt_limit, seed=seed, progress=progress, **how)
    train, test = dataset.train, dataset.test
    adapt = train.columns["title"] if preset.adapt_field == "title" else train.texts(preset.text_mode)
    clf.fit(train.texts(preset.text_mode), train.labels, classes=dataset.classes, adapt_texts=adapt,
            validation_data=(test.texts(preset.text_mode), test.labels),
            metadata={"dataset": dataset.name, "text": preset.text_mode, "preset": preset.name})
    epoch = clf.history_[-1]
    counts = clf.parameter_counts
    row = {
        "experiment": preset.name,
        "mode": "fast" if fast else "lesson",
        "title": preset.title,
        "params_keras": counts["keras"],
        "params_pytorch": counts["pytorch"],
        "lesson_params_keras": preset.keras_params,
        "train_rows": epoch.samples,
        "epoch_seconds": epoch.seconds,
        "samples_per_s": epoch.samples_per_s,
        "train_accuracy": epoch.accuracy,
        "val_accuracy": epoch.val_accuracy,
        "interrupted": epoch.interrupted,
        "lesson_val_accuracy": preset.published_accuracy,
        "lesson_epoch_seconds": preset.published_seconds,
        "lesson_note": preset.published_note,
    }
    return clf, row


def run_lesson(dataset: Dataset, out_dir: str | Path | None = None, seed: int = 0, progress: bool = True,
               experiments: list[str] | None = None, fast: bool = False) -> list[dict[str, Any]]:
    """Run the experiments; with `out_dir`, save each model under it and the table as `results.json`."""
    rows = []
    for name in experiments or list(PRESETS):
        clf, row = run_experiment(PRESETS[name], dataset, seed=seed, progress=progress, fast=fast)
        rows.append(row)
        if out_dir is not None:
            clf.save_pretrained(Path(out_dir) / name)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        record = {"dataset": dataset.name, "train_rows": len(dataset.train), "test_rows": len(dataset.test),
                  "notes": dataset.notes, "seed": seed, "fast": fast, "results": rows}
        (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    return rows


def format_lesson_table(rows: list[dict[str, Any]]) -> str:
    header = ("experiment", "params", "epoch s", "samples/s", "val acc", "lesson acc", "lesson s")
    body = []
    for r in rows:
        acc = "—" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
        lesson_acc = f"{r['lesson_val_accuracy']:.4f}" if r["lesson_val_accuracy"] is not None else "n/a*"
        lesson_s = f"{r['lesson_epoch_seconds']:.0f}" if r["lesson_epoch_seconds"] is not None else "—"
        body.append((r["experiment"], f"{r['params_keras']:,}", f"{r['epoch_seconds']:.1f}",
                     f"{r['samples_per_s']:,.0f}", acc, lesson_acc, lesson_s))
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    lines = [fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)]
    lines.append("params: Keras count (PyTorch adds one bias vector per gate); lesson: one epoch on 120,000 rows "
                 "on a GPU machine.")
    notes = [f"* {r['experiment']}: {r['lesson_note']}" for r in rows if r["lesson_note"]]
    return "\n".join(lines + notes)
