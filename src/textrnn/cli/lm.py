"""`textrnn lm train|evaluate`: recurrent language models on a dataset's texts (labels ignored) or plain text."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..errors import TextrnnError
from ..model_files import TENSORBOARD_DIR, check_model_directory, check_model_target
from .flags import add_data_flags, add_device_flag, data_source
from .launch import add_nproc_flag, main_process, relaunch, resumed_processes

DEFAULT_OUT = "textrnn-lm"
DEFAULT_VAL_SPLIT = 0.05
DEFAULT_CHECKPOINT_EVERY = 500


def add_parser(sub) -> None:
    p = sub.add_parser("lm", help="language models: train one on texts (labels ignored), or measure its perplexity")
    lsub = p.add_subparsers(dest="lm_command", metavar="ACTION", required=True)
    t = lsub.add_parser("train", help="train a recurrent language model by truncated backpropagation through time")
    add_data_flags(t)
    t.add_argument("--corpus", action="append", metavar="FILE", help="plain text, one text per line (.gz ok); "
                   "repeat for several files; instead of a dataset")
    g = t.add_argument_group("model (AWD-LSTM's regularisation)")
    g.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="lstm")
    g.add_argument("--embedding-dim", type=int, default=128)
    g.add_argument("--hidden-size", type=int, default=256)
    g.add_argument("--layers", type=int, default=2)
    g.add_argument("--tokenizer", choices=["word", "char", "wordpiece", "bpe"], default="word")
    g.add_argument("--max-tokens", type=int, help="vocabulary size (default: 20,000; 200 with --tokenizer char)")
    g.add_argument("--softmax", choices=["auto", "full", "adaptive"], default="auto",
                   help="auto (default): adaptive from 5,000 tokens up (faster, no weight tying), else full")
    g.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=True,
                   help="share the embedding with the output layer (default, with the full softmax)")
    g.add_argument("--embed-dropout", type=float, default=0.1, help="words dropped from the embedding (0.1)")
    g.add_argument("--input-dropout", type=float, default=0.3, help="locked dropout on the embeddings (0.3)")
    g.add_argument("--hidden-dropout", type=float, default=0.2, help="locked dropout between layers (0.2)")
    g.add_argument("--output-dropout", type=float, default=0.3, help="locked dropout before the output (0.3)")
    g.add_argument("--weight-drop", type=float, default=0.3, help="DropConnect on hidden-to-hidden weights (0.3)")
    g = t.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=5)
    g.add_argument("--batch-size", type=int, default=32, help="parallel rows of the stream (32)")
    g.add_argument("--bptt", type=int, default=70, help="steps per window of truncated backpropagation (70)")
    g.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (3e-3)")
    g.add_argument("--clip-norm", type=float, default=0.25, help="gradient clipping norm (0.25)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--early-stopping", type=int, default=2, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a lower validation loss, keeping the best (2)")
    g.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    g.add_argument("--seed", type=int, default=0)
    add_device_flag(g)
    g = t.add_argument_group("run directory: the model and its checkpoints")
    g.add_argument("--out", metavar="DIR", help=f"model directory to write (default: {DEFAULT_OUT})")
    g.add_argument("--resume", metavar="DIR", help="continue the run in DIR where it stopped (crash, Ctrl-C), from "
                   "its newest intact checkpoint, with its own settings and texts")
    g.add_argument("--checkpoint-every", type=int, metavar="WINDOWS", default=DEFAULT_CHECKPOINT_EVERY,
                   help=f"checkpoint every WINDOWS windows as well as after every epoch "
                        f"(default {DEFAULT_CHECKPOINT_EVERY})")
    g.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints (no --resume then)")
    g.add_argument("--tensorboard", action="store_true", help="also log metrics to OUT/tensorboard")
    add_nproc_flag(t.add_argument_group("data-parallel training"))
    t.set_defaults(func=run_train)

    e = lsub.add_parser("evaluate", help="perplexity of a language model on texts: a plain text file, or a "
                        "dataset's test split")
    e.add_argument("model", help="language model directory")
    e.add_argument("--corpus", action="append", metavar="FILE", help="plain text, one text per line")
    add_data_flags(e, training=False)
    add_device_flag(e)
    e.set_defaults(func=run_evaluate)


def corpus_texts(args: argparse.Namespace, split: str) -> tuple[str, list[str], list[str] | None, dict]:
    """(name, texts, validation texts or None, where they came from) from --corpus or the data flags; `split` is
    train or test."""
    from ..data.corpus import read_corpus

    if args.corpus:
        if getattr(args, "dataset", None) or getattr(args, "train", None) or args.test:
            raise TextrnnError("give either --corpus FILE or a dataset/--train/--test, not both")
        files = [str(Path(c).resolve()) for c in args.corpus]
        return ", ".join(Path(c).name for c in args.corpus), read_corpus(files), None, {"corpus": files}
    source = data_source(args, training=split == "train")
    dataset = source.load()
    text = args.text or dataset.text
    origin = {"source": source.to_dict(), "text": text}
    if split == "test":
        return dataset.name, dataset.test.texts(text), None, origin
    validation = dataset.validation.texts(text) if dataset.validation is not None else None
    return dataset.name, dataset.train.texts(text), validation, origin


def texts_of(origin: dict, val_split: float, seed: int) -> tuple[list[str], list[str]]:
    """The training and validation texts a run recorded in `origin` (also what --resume reads again)."""
    from ..data import DataSource
    from ..data.corpus import hold_out, read_corpus

    validation = None
    if "corpus" in origin:
        texts = read_corpus(origin["corpus"])
    else:
        dataset = DataSource.from_dict(origin["source"]).load()
        texts = dataset.train.texts(origin["text"])
        validation = dataset.validation.texts(origin["text"]) if dataset.validation is not None else None
    if not any(t.strip() for t in texts):
        raise TextrnnError("the corpus is empty: no text to learn from")
    if validation is None:  # never the test split: a share of the training texts
        texts, validation = hold_out(texts, val_split, seed)
    return texts, validation


def run_train(args: argparse.Namespace) -> int:
    if args.resume:
        from ..language_model import BaseLanguageModel
        from ..training import CHECKPOINTS_DIR, Checkpointer

        directory = Path(args.resume)
        checkpoint = Checkpointer(directory / CHECKPOINTS_DIR).latest()
        if checkpoint is None:
            raise TextrnnError(f"nothing to resume: no checkpoints in {directory / CHECKPOINTS_DIR}")
        if (status := relaunch(args, resumed_processes(args, checkpoint), directory, "lm train")) is not None:
            return status
        record = checkpoint.state["run"]
        data = record["metadata"].get("data")
        if data is None:
            raise TextrnnError(f"{checkpoint.path} was not written by `textrnn lm train`; resume it from Python")
        params = dict(record["params"], checkpoint_dir=directory / CHECKPOINTS_DIR,
                      progress=not args.quiet and main_process())
        if params.get("tensorboard_dir") is not None:
            params["tensorboard_dir"] = directory / TENSORBOARD_DIR
        texts, validation = texts_of(data, record["metadata"]["val_split"], params["seed"])
        lm = BaseLanguageModel(**params).fit(texts, validation, metadata=record["metadata"], resume=checkpoint)
        return _saved(lm, directory)
    out = Path(args.out or DEFAULT_OUT)
    check_model_target(out)  # now, not after the run that would end in it
    if (status := relaunch(args, args.nproc, out, "lm train")) is not None:  # the processes read the texts
        return status
    name, _, _, origin = corpus_texts(args, "train")
    val_split = args.val_split or DEFAULT_VAL_SPLIT
    texts, validation = texts_of(origin, val_split, args.seed)
    # torch only now, so that a missing or empty corpus is reported without waiting for it
    from ..language_model import BaseLanguageModel
    from ..training import CHECKPOINTS_DIR

    max_tokens = args.max_tokens or (200 if args.tokenizer == "char" else 20_000)
    lm = BaseLanguageModel(cell=args.cell, embedding_dim=args.embedding_dim, hidden_size=args.hidden_size,
                           layers=args.layers, tie_weights=args.tie_weights,
                           embed_dropout=args.embed_dropout, input_dropout=args.input_dropout,
                           hidden_dropout=args.hidden_dropout, output_dropout=args.output_dropout,
                           weight_drop=args.weight_drop, softmax=args.softmax, tokenizer=args.tokenizer,
                           max_tokens=max_tokens, batch_size=args.batch_size, bptt=args.bptt, epochs=args.epochs,
                           lr=args.lr, seed=args.seed, device=args.device, clip_norm=args.clip_norm,
                           weight_decay=args.weight_decay, early_stopping=args.early_stopping, precision=args.precision,
                           progress=not args.quiet and main_process(),
                           checkpoint_dir=None if args.no_checkpoints else out / CHECKPOINTS_DIR,
                           checkpoint_every=args.checkpoint_every,
                           tensorboard_dir=out / TENSORBOARD_DIR if args.tensorboard else None)
    if main_process():
        print(f"training a {args.tokenizer}-level {args.cell.upper()} language model on {len(texts):,} texts of "
              f"{name}, validating on {len(validation):,}", file=sys.stderr)
    lm.fit(texts, validation, metadata={"corpus": name, "data": origin, "val_split": val_split})
    return _saved(lm, out)


def _saved(lm, out: Path) -> int:
    if not main_process():
        return 0  # rank 0 writes the model directory
    out = lm.save_pretrained(out)
    best = min((h for h in lm.history_ if "val_perplexity" in h), key=lambda h: h["val_loss"], default=None)
    where = f" (validation perplexity {best['val_perplexity']:.2f}, epoch {best['epoch']})" if best else ""
    print(f"saved {out}{where}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    check_model_directory(args.model)  # before torch is imported
    from ..language_model import BaseLanguageModel

    lm = BaseLanguageModel.from_pretrained(args.model, device=args.device)
    name, texts, _, _ = corpus_texts(args, "test")
    texts = texts[: args.limit] if args.limit else texts
    perplexity = lm.perplexity(texts)
    print(f"perplexity {perplexity:.2f} (cross-entropy {math.log(perplexity):.4f} nats per token) on {len(texts):,} "
          f"texts of {name}")
    return 0
