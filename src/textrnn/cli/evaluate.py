"""`textrnn evaluate`: accuracy, per-class report and confusion matrix of a model on a test split."""

from __future__ import annotations

import argparse
import json
import sys

from .flags import add_data_flags, add_runtime_flags, data_source, given_data_flags, load_classifier


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and per-class report of a model on the test split (with no data "
                       "flags: the test split of the data it was trained on)")
    p.add_argument("model", help="model directory")
    add_data_flags(p, training=False)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--report", metavar="DIR", help="also write metrics.json, report.txt and confusion_matrix.png "
                   "into DIR (the model directory itself, for `textrnn compare`)")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def recorded_test_source(metadata: dict, data_dir: str | None):
    """The test split beside the data a model was trained on, from its run record (also textrnn 0.1's)."""
    from dataclasses import replace

    from ..data import DATASETS, DataSource

    if "source" in metadata:
        source = DataSource.from_dict(metadata["source"]).test_only()
        return source if source.own_files else replace(source, data_dir=data_dir or source.data_dir)
    legacy = metadata.get("cli") or {}  # textrnn 0.1 recorded its argparse flags
    if legacy.get("test") and not legacy.get("dataset"):
        return DataSource(test=legacy["test"], format=legacy.get("format"), label_column=legacy.get("label_column"),
                          text_columns=tuple(legacy["text_column"]) if legacy.get("text_column") else None,
                          header=legacy.get("header"))
    if metadata.get("dataset") in DATASETS:
        return DataSource(dataset=metadata["dataset"], data_dir=data_dir or legacy.get("data_dir"))
    return None


def run_metadata(path: str) -> dict:
    """The metadata a model directory's run recorded ({} for an ONNX export directory or a bare model)."""
    from pathlib import Path

    from ..errors import TextrnnError
    from ..model_files import CONFIG_FILE, read_configs

    if (Path(path) / CONFIG_FILE).is_file():
        try:
            _, trainer_state = read_configs(path)
        except TextrnnError:  # an export directory's config.json is not a model's; it records no run
            return {}
        return ((trainer_state or {}).get("run") or {}).get("metadata") or {}
    return {}


def run(args: argparse.Namespace) -> int:
    clf = load_classifier(args)
    from ..evaluation import evaluate, format_metrics, write_report

    metadata = run_metadata(args.model)
    source = None if given_data_flags(args) else recorded_test_source(metadata, args.data_dir)
    dataset = (source or data_source(args, training=False)).load()
    text = args.text or metadata.get("text") or dataset.text
    test = dataset.test.take(args.limit)
    metrics = evaluate(clf, test.texts(text), dataset.labels_of(test))
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    if args.report:
        written = write_report(metrics, args.report)
        print(f"wrote {', '.join(written)} to {args.report}", file=sys.stderr)
    return 0
