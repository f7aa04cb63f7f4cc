"""`textrnn lesson`: the lesson's four experiments beside its published numbers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("lesson", help="run the lesson's four experiments and compare with its published numbers")
    p.add_argument("--data-dir", help="AG News folder (default: the cached download)")
    p.add_argument("--limit", type=int, help="use only the first N training rows")
    p.add_argument("--only", action="append", help="run only this experiment (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", default="runs/lesson",
                   help="where results.json and the models go (default: %(default)s)")
    p.add_argument("--fast", action="store_true", help="train with textrnn's defaults (length-bucketed batches, "
                   "row-wise embedding updates) instead of the lesson's padded file-order batches and dense Adam")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_ag_news
    from ..lesson import get_preset
    from ..lesson.runner import format_lesson_table, run_lesson

    for name in args.only or []:
        get_preset(name)
    dataset = load_ag_news(args.data_dir, limit=args.limit)
    rows = run_lesson(dataset, out_dir=args.out, seed=args.seed, progress=not args.quiet, experiments=args.only,
                      fast=args.fast)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"\nThe lesson on {dataset.name}: {len(dataset.train):,} training rows, {len(dataset.test):,} "
              f"validation rows, one epoch each, {'textrnn fast path' if args.fast else 'trained the lesson way'}")
        print(format_lesson_table(rows))
        print(f"results: {Path(args.out) / 'results.json'}")
    return 0
