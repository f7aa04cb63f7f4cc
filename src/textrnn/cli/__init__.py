"""The `textrnn` command: one module per verb, each a thin layer over the Python API.

Every user-fixable problem ends in one line on stderr and exit status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from ..errors import TextrnnError
from ..version import __version__
from . import (compare, datasets, embeddings, evaluate, explain, export, generate, lesson, lm, predict, serve, summary,
               train, tune)

VERBS = (train, tune, evaluate, predict, explain, serve, export, lm, generate, summary, compare, embeddings,
         datasets, lesson)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textrnn", description="Recurrent-network text classifiers.")
    parser.add_argument("--version", action="version", version=f"textrnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for verb in VERBS:
        verb.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        # argparse stops filling `predict`'s TEXT... at the first flag ("predict M --json TEXT"); the texts
        # that follow come back here as extras.
        if args.command == "predict" and not any(e.startswith("-") and e != "-" for e in extras):
            args.texts = [*args.texts, *extras]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `--nproc` hands each process torchrun starts
    rank = int(os.environ.get("RANK", 0)) if int(os.environ.get("WORLD_SIZE", 1)) > 1 else 0
    who = f"rank {rank}: " if rank else ""  # one of torchrun's processes, not the first
    logging.basicConfig(format=f"textrnn: {who}%(message)s", level=logging.WARNING)
    try:
        return args.func(args)
    except TextrnnError as exc:
        if args.debug:
            raise
        print(f"textrnn: {who}error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if args.debug or not _lost_a_peer(exc):
            raise
        # another process of the run is gone: the launcher (torchrun's agent) reports which and why
        if "TORCHELASTIC_RUN_ID" not in os.environ:
            print(f"textrnn: {who}error: lost contact with the other processes of this run "
                  f"({' '.join(str(exc).split())[:200]})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("textrnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`textrnn predict ... | head`): stop quietly, as Unix tools do, and keep Python
        # from complaining again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the broken pipe


def _lost_a_peer(exc: RuntimeError) -> bool:
    """Whether `exc` is torch.distributed's word that another process of the run has gone (gloo, NCCL)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return False
    text = str(exc)
    return isinstance(exc, torch.distributed.DistError) or any(
        mark in text for mark in ("gloo", "NCCL", "Connection reset", "Connection closed"))
