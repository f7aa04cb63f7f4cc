"""`textrnn predict`: label texts given as arguments, in a file (one per line) or on stdin."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import TextrnnError
from .flags import add_runtime_flags, load_classifier


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="label texts given as arguments, in a file (one per line) or on stdin")
    p.add_argument("model", help="model directory")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to label; '-' or none reads stdin")
    p.add_argument("--file", help="read texts from this file, one per line")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.add_argument("--top", type=int, default=None, help="show the K most probable classes (default: all)")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def read_texts(args: argparse.Namespace) -> list[str]:
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise TextrnnError(f"no such file: {path}")
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.texts and args.texts != ["-"]:
        return list(args.texts)
    if sys.stdin is None or sys.stdin.isatty():
        raise TextrnnError("no texts: give them as arguments, with --file, or on stdin")
    return [line for line in sys.stdin.read().splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    clf = load_classifier(args)
    texts = read_texts(args)
    if not texts:
        raise TextrnnError("no texts to label")
    proba = clf.predict_proba(texts)
    k = len(clf.classes_) if args.top is None else max(1, min(args.top, len(clf.classes_)))
    for text, p in zip(texts, proba):
        ranked = sorted(zip(clf.classes_, p.tolist()), key=lambda kv: kv[1], reverse=True)
        if args.json:
            print(json.dumps({"text": text, "label": ranked[0][0], "probabilities": dict(ranked[:k])}))
        else:
            print("\t".join([ranked[0][0], " ".join(f"{name}={prob:.4f}" for name, prob in ranked[:k]), text]))
    return 0
