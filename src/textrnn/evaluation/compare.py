"""`textrnn compare`: training runs (model directories) side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import TextrnnError
from ..models import CELL_NAMES
from ..model_files import read_configs
from .metrics import METRICS_FILE


def compare_runs(directories) -> list[dict[str, Any]]:
    """One summary per model directory: data, model, training, the kept epoch's validation metrics, and the test
    metrics when `textrnn evaluate RUN --report RUN` wrote metrics.json there."""
    rows = []
    for directory in map(Path, directories):
        config, trainer_state = read_configs(directory)
        trainer_state = trainer_state or {}
        try:
            model, history = config["model"], trainer_state.get("history", [])
            params = trainer_state.get("params", {})
            metadata = (trainer_state.get("run") or {}).get("metadata", {})
        except (KeyError, AttributeError) as exc:
            raise TextrnnError(f"{directory} is not a valid textrnn model directory: {exc}") from None
        kept = next((h for h in history if h.get("best")), history[-1] if history else {})
        cell = CELL_NAMES.get(model.get("cell"), model.get("cell"))
        shape = f"{'Bi' if model.get('bidirectional') else ''}{cell} {model.get('layers')}x{model.get('hidden_size')}"
        row = {
            "run": directory.name,
            "dataset": metadata.get("dataset"),
            "model": f"{shape}, emb {model.get('embedding_dim')}",
            "tokenizer": config["tokenizer"].get("type", "word"),
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
        metrics_path = directory / METRICS_FILE
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
