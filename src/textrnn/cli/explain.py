"""`textrnn explain`: which words pushed a model to its label, coloured in the terminal, as JSON or as HTML."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import TextrnnError
from .flags import add_device_flag
from .predict import read_texts


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="score each token of texts by how much it pushed the model to its label "
                       "(integrated gradients or occlusion, with Captum)")
    p.add_argument("model", help="model directory")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to explain; '-' or none reads stdin")
    p.add_argument("--file", help="read texts from this file, one per line")
    p.add_argument("--method", choices=["integrated-gradients", "occlusion"], default="integrated-gradients",
                   help="integrated gradients from a baseline of padding (default), or occlusion: each token "
                        "replaced by padding in turn")
    p.add_argument("--target", metavar="CLASS", help="explain this class instead of the predicted one")
    p.add_argument("--steps", type=int, help="integrated gradients' steps (default: 50, doubled until the scores "
                   "add up to the logit difference within 1%%)")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.add_argument("--html", metavar="FILE", help="also write the explanations as an HTML page")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="colour the words (auto: on a terminal, unless NO_COLOR is set)")
    add_device_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model_files import check_model_directory

    check_model_directory(args.model)  # before torch and Captum are imported
    from ..classifier import BaseTextClassifier
    from ..evaluation.highlight import ansi, headline, html_page, plain, top_tokens

    clf = BaseTextClassifier.from_pretrained(args.model, device=args.device)
    texts = read_texts(args)
    if not texts:
        raise TextrnnError("no texts to explain")
    explanations = clf.explain(texts, method=args.method, target=args.target, steps=args.steps)
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    for e in explanations:
        if args.json:
            print(json.dumps(e.to_dict()))
        else:
            print(f"{headline(e)}\n{ansi(e) if colour else plain(e)}\n{top_tokens(e)}\n")
    if args.html:
        Path(args.html).write_text(html_page(explanations, f"textrnn explain {Path(args.model).name}"),
                                   encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0
