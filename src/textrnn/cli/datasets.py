"""`textrnn datasets`: the built-in datasets and where each is found."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("datasets", help="list the built-in datasets and where each is found")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.datasets import DATASETS, where_is

    width = max(len(n) for n in DATASETS) + 2
    for name, info in DATASETS.items():
        print(f"{name:<{width}}{info.description}: {info.sizes}; classes: {info.classes}")
        print(f"{'':<{width}}layout: {info.layout}")
        print(f"{'':<{width}}found: {where_is(name)}")
    return 0
