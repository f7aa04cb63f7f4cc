"""`textrnn summary`: layers, output shapes and parameter counts of a model directory or a preset."""

from __future__ import annotations

import argparse
from pathlib import Path

from .flags import add_model_flags, classifier_params


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="layers, output shapes and parameter counts of a model or preset")
    p.add_argument("model", nargs="?", help="model directory (else --preset or model flags)")
    add_model_flags(p)
    p.add_argument("--num-classes", type=int, default=4)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model:
        from ..model_files import check_model_directory

        check_model_directory(args.model)  # before torch is imported
    from ..classifier import BaseTextClassifier
    from ..models import summary

    if args.model:
        clf = BaseTextClassifier.from_pretrained(args.model)
        print(clf.summary(Path(args.model).name))
        return 0
    params, preset = classifier_params(args)
    print(summary(BaseTextClassifier(**params).build(args.num_classes), preset.name if preset else "textrnn"))
    return 0
