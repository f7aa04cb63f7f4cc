"""`textrnn compare`: training runs side by side."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="print training runs (model directories) side by side")
    p.add_argument("runs", nargs="+", metavar="RUN", help="model directories written by `train` (with metrics.json "
                   "from `evaluate RUN --report RUN`, test metrics are shown too)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import compare_runs, format_comparison

    rows = compare_runs(args.runs)
    print(json.dumps(rows, indent=2) if args.json else format_comparison(rows))
    return 0
