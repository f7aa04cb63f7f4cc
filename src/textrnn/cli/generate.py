"""`textrnn generate`: text from a language model, streamed to the terminal as it is produced."""

from __future__ import annotations

import argparse
import sys

from .flags import add_device_flag


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="sample text from a language model (`textrnn lm train`)")
    p.add_argument("model", help="language model directory")
    p.add_argument("--prompt", default="", help="text to continue (default: start a new text)")
    p.add_argument("--max-tokens", type=int, default=50, help="tokens to generate at most (default %(default)s); "
                   "the end of a text stops sooner")
    p.add_argument("--temperature", type=float, default=1.0, help="sharpen (<1) or flatten (>1) the "
                   "distribution; 0: always the most probable token (default %(default)s)")
    p.add_argument("--top-k", type=int, help="draw only from the K most probable tokens")
    p.add_argument("--top-p", type=float, help="draw only from the most probable tokens whose probabilities add "
                   "up to P (nucleus sampling)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same text (default %(default)s)")
    p.add_argument("--count", type=int, default=1, help="how many texts (seeds SEED, SEED+1, ...)")
    add_device_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import TextrnnError
    from ..model_files import check_model_directory

    check_model_directory(args.model)  # before torch is imported
    from ..language_model import TextGenerator

    if args.count < 1:
        raise TextrnnError(f"--count must be at least 1, got {args.count}")
    generator = TextGenerator.from_pretrained(args.model, device=args.device)
    generator.prompt_ids(args.prompt)  # a prompt it cannot read fails before anything is printed
    for i in range(args.count):
        sys.stdout.write(args.prompt)
        for piece in generator.stream(args.prompt, max_tokens=args.max_tokens, temperature=args.temperature,
                                      top_k=args.top_k, top_p=args.top_p, seed=args.seed + i):
            sys.stdout.write(piece)
            sys.stdout.flush()  # each token as it comes
        sys.stdout.write("\n")
    sys.stdout.flush()
    return 0
