"""`textrnn train`: train a classifier on a dataset or your own files and save it as a model directory; or
`--resume` a run where it stopped."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import TextrnnError
from ..model_files import (PRETRAINED_LM_DIR, TENSORBOARD_DIR, check_model_directory, check_model_target,
                           read_configs)
from .launch import add_nproc_flag, main_process, relaunch, resumed_processes
from .flags import DATA_FLAGS, MODEL_FLAGS, TRAIN_FLAGS, add_data_flags, add_model_flags, classifier_params, data_source

DEFAULT_OUT = "textrnn-model"
DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_VAL_SPLIT = 0.1


def distance_or_auto(text: str) -> float | str:
    """--adversarial's value: a distance, or "auto" (what the default resolves to for the run's embedding)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a distance or 'auto', not {text!r}") from None


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a classifier and save it as a model directory")
    add_model_flags(p)
    add_data_flags(p)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, help="at most this many epochs (default 8, presets 1)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="Adam learning rate (default 3e-3, presets 1e-3)")
    g.add_argument("--seed", type=int)
    g.add_argument("--batching", choices=["bucket", "shuffle", "sequential"],
                   help="bucket: length-sorted batches without padding (default); shuffle: random order, padded; "
                        "sequential: file order, padded (the lesson's)")
    g.add_argument("--optimizer", choices=["auto", "fast-adam", "lazy-adam", "adam"],
                   help="auto (default): fast-adam on the CPU (Adam with row-wise embedding updates), adam on "
                        "CUDA; adam: torch's dense Adam, exactly the lesson's; lazy-adam: SparseAdam's rule")
    g.add_argument("--clip-norm", type=float, help="clip the gradient to this norm (default 5; presets: none)")
    g.add_argument("--weight-decay", type=float, help="decoupled weight decay, as AdamW (default 0)")
    g.add_argument("--adversarial", type=distance_or_auto, metavar="EPSILON", help="adversarial training on the "
                   "embeddings (Miyato et al. 2017): also train on each text moved EPSILON (L2) the way that raises "
                   "its loss most; about twice the time a step (default auto: 1 when the embedding starts from "
                   "pretrained vectors, GloVe by default, 0.2 of a row's length from --init-from, else 0; presets "
                   "0: off)")
    g.add_argument("--label-smoothing", type=float, metavar="P", help="train towards targets that put this share of "
                   "their weight evenly on every class (default 0)")
    g.add_argument("--lr-schedule", choices=["constant", "linear", "plateau", "slanted"],
                   help="linear (default; presets: constant): warm-up then decay to 0; constant; plateau: halve when "
                        "validation stalls; "
                        "slanted: ULMFiT's slanted triangular rates (up over --warmup, 0.1, then down)")
    g.add_argument("--discriminative-lr", type=float, metavar="FACTOR", help="each layer below the head learns "
                   "FACTOR times slower than the one above (ULMFiT: 2.6; the default with --init-from)")
    g.add_argument("--gradual-unfreezing", action=argparse.BooleanOptionalAction, default=None,
                   help="train the head alone in epoch 1, then one more layer each epoch (default with --init-from)")
    g.add_argument("--warmup", type=float, help="with --lr-schedule linear: fraction of steps spent warming up "
                   "(default 0.1)")
    g.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without improvement and keep the best epoch's weights "
                        "(default 2; with --init-from 10, so that all 10 epochs run; 0: train every epoch)")
    g.add_argument("--monitor", choices=["val_accuracy", "val_loss"], help="what early stopping and plateau watch")
    g.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: train under bfloat16 autocast (AMX CPUs, GPUs); default fp32")
    g.add_argument("--adapt-limit", type=int, help="build the vocabulary from the first N training texts")
    g.add_argument("--max-len", type=int, help="keep at most N tokens of each text (default 400; 0 and presets: "
                   "whole texts)")
    g.add_argument("--truncate", choices=["head", "tail", "both"],
                   help="with --max-len: keep the first tokens (default), the last, or half from each end")
    g.add_argument("--device", help="auto (default), cpu or cuda")
    g.add_argument("--quick", action="store_true", help="a first model in a fraction of the time: 3 epochs over the "
                   "first 200 tokens of each text (flags given explicitly still win)")
    g = p.add_argument_group("pretraining: a language model on the training texts first (ULMFiT)")
    g.add_argument("--pretrain", action="store_true", help="train a language model on the training texts (and "
                   "--unlabeled ones) into OUT/lm, then fine-tune the classifier from it")
    g.add_argument("--unlabeled", action="append", metavar="FILE", help="with --pretrain: more text for the "
                   "language model, one text per line (.gz ok); repeat for several files")
    g.add_argument("--pretrain-epochs", type=int, default=10, help="the language model's most epochs: it stops "
                   "when its validation perplexity has not improved for 2 (default 10)")
    g = p.add_argument_group("run directory: the model, its checkpoints and logs")
    g.add_argument("--out", metavar="DIR", help=f"model directory to write (default: {DEFAULT_OUT})")
    g.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped (crash, "
                   "Ctrl-C), from its newest intact checkpoint, with its own settings and data; with --epochs N, "
                   "train a finished run on to N epochs (not with --lr-schedule linear)")
    g.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="checkpoint every STEPS optimizer steps "
                   f"as well as after every epoch (default {DEFAULT_CHECKPOINT_EVERY})")
    g.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints (no --resume then)")
    g.add_argument("--tensorboard", action="store_true", help=f"also log metrics to OUT/{TENSORBOARD_DIR}")
    add_nproc_flag(p.add_argument_group("data-parallel training"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume:
        return resume(args)
    out = Path(args.out or DEFAULT_OUT)
    check_model_target(out)  # now, not after the run that would end in it
    if args.pretrain and (args.nproc or 1) > 1:
        raise TextrnnError("--pretrain with --nproc: pretrain first (`textrnn lm train`), then train with "
                           "--init-from and --nproc")
    if (status := relaunch(args, args.nproc, out)) is not None:
        return status
    params, preset = recipe_params(args)
    if params.get("init_from"):
        check_model_directory(params["init_from"])  # before the data is read, and before torch is imported
    if args.val_split is None and not preset:  # early stopping chooses the epoch: never on the test split
        args.val_split = DEFAULT_VAL_SPLIT
    source = data_source(args)
    dataset = source.load()
    text = args.text or (preset.text_mode if preset and dataset.name == "ag_news" else dataset.text)
    if args.unlabeled and not args.pretrain:
        raise TextrnnError("--unlabeled texts are for the language model of --pretrain")
    if args.pretrain:
        if params.get("init_from"):
            raise TextrnnError("--pretrain trains the language model to start from: give it or --init-from, not both")
        params["init_from"] = str(pretrain(args, params, dataset.train.texts(text), out))
    if params.get("init_from"):
        fine_tuning(params)
    # torch only now, so that a bad file or flag is reported without waiting for it (and never scikit-learn: the
    # base class trains without it; the Python API's TextClassifier adds it for its estimator protocol)
    from ..classifier import BaseTextClassifier
    from ..training import CHECKPOINTS_DIR

    clf = BaseTextClassifier(**params, progress=not args.quiet and main_process(),
                             checkpoint_dir=None if args.no_checkpoints else out / CHECKPOINTS_DIR,
                             checkpoint_every=args.checkpoint_every or DEFAULT_CHECKPOINT_EVERY,
                             tensorboard_dir=out / TENSORBOARD_DIR if args.tensorboard else None)
    metadata = {"dataset": dataset.name, "text": text, "preset": preset.name if preset else None,
                "source": source.to_dict()}
    # The lesson adapts its vocabulary on titles; other data has no titles, so it adapts on what it reads.
    adapt = (dataset.train.columns[preset.adapt_field]
             if preset and preset.adapt_field in dataset.train.columns else None)
    return _train(clf, dataset, text, metadata, out, adapt=adapt)


def recipe_params(args: argparse.Namespace) -> tuple[dict, object]:
    """TextClassifier arguments and the preset (or None): the flags given, over --quick's settings if asked for."""
    params, preset = classifier_params(args)
    if args.quick:
        if preset or params.get("init_from") or args.pretrain:
            raise TextrnnError("--quick shortens textrnn's own recipe; a preset and --init-from/--pretrain have "
                               "their own settings")
        from ..classifier import QUICK

        params = {**QUICK, **params}
    return params, preset


def fine_tuning(params: dict) -> None:
    """ULMFiT's recipe (classifier.FINE_TUNING) for whatever the flags left unset, the language model's tokenizer,
    and at least the epochs it takes to unfreeze every layer."""
    from ..classifier import FINE_TUNING
    config, _ = read_configs(params["init_from"])
    epochs_given = "epochs" in params
    for name, value in FINE_TUNING.items():
        params.setdefault(name, value)
    params.setdefault("tokenizer", (config.get("tokenizer") or {}).get("type", "word"))
    if not epochs_given:  # a deep language model takes more epochs to unfreeze: head, each layer, embedding
        params["epochs"] = max(params["epochs"], int((config.get("model") or {}).get("layers", 1)) + 3)


def pretrain(args: argparse.Namespace, params: dict, texts: list[str], out: Path) -> Path:
    """Train a language model on the training texts (and --unlabeled ones) into OUT/lm; its directory."""
    from ..data.corpus import hold_out, read_corpus
    from ..language_model import BaseLanguageModel

    corpus = list(texts) + (read_corpus(args.unlabeled) if args.unlabeled else [])
    tokenizer = params.get("tokenizer", "word")
    lm_texts, lm_validation = hold_out(corpus, 0.05, params.get("seed", 0))
    print(f"pretraining a language model on {len(lm_texts):,} texts ({len(corpus) - len(texts):,} unlabeled), "
          f"validating on {len(lm_validation):,}", file=sys.stderr)
    # one width for every layer (no tied output), so that the classifier can take every layer
    max_tokens = params.get("max_tokens") or (200 if tokenizer == "char" else 20_000)
    lm = BaseLanguageModel(layers=params.get("layers") or 1, hidden_size=params.get("hidden_size") or 256,
                           embedding_dim=params.get("embedding_dim") or 128, cell=params.get("cell") or "lstm",
                           tokenizer=tokenizer, max_tokens=max_tokens, tie_weights=False,
                           epochs=args.pretrain_epochs, seed=params.get("seed", 0), progress=not args.quiet)
    lm.fit(lm_texts, lm_validation, metadata={"pretraining_for": str(out)})
    return lm.save_pretrained(out / PRETRAINED_LM_DIR)


def resume(args: argparse.Namespace) -> int:
    """Continue the run in --resume DIR with its own settings and data, from its newest intact checkpoint."""
    from ..data import DataSource
    from ..classifier import BaseTextClassifier
    from ..training import CHECKPOINTS_DIR, Checkpointer

    given = [name for name in MODEL_FLAGS + TRAIN_FLAGS + DATA_FLAGS + ("preset", "out", "checkpoint_every")
             if getattr(args, name, None) is not None and name not in ("device", "epochs")]
    given += ["quick"] if args.quick else []
    if given:
        raise TextrnnError(f"--resume continues a run with its own settings; drop --{given[0].replace('_', '-')}")
    directory = Path(args.resume)
    checkpoint = Checkpointer(directory / CHECKPOINTS_DIR).latest()
    if checkpoint is None:
        raise TextrnnError(f"nothing to resume: no checkpoints in {directory / CHECKPOINTS_DIR}")
    if (status := relaunch(args, resumed_processes(args, checkpoint), directory)) is not None:
        return status
    record = checkpoint.state["run"]
    metadata = record["metadata"]
    if "source" not in metadata:
        raise TextrnnError(f"{checkpoint.path} was not written by `textrnn train`; resume it from Python")
    params = dict(record["params"], checkpoint_dir=directory / CHECKPOINTS_DIR,
                  progress=not args.quiet and main_process())
    if params.get("tensorboard_dir") is not None:
        params["tensorboard_dir"] = directory / TENSORBOARD_DIR
    for name in ("device", "epochs"):  # where it runs, and (constant or plateau schedules) how long
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    clf = BaseTextClassifier(**params)
    dataset = DataSource.from_dict(metadata["source"]).load()
    return _train(clf, dataset, metadata["text"], metadata, directory, checkpoint=checkpoint)


def _train(clf, dataset, text: str | None, metadata: dict, out: Path, adapt=None, checkpoint=None) -> int:
    from ..training import kept_epoch
    from ..training.distributed import world_from_env

    val, world = dataset.val, world_from_env()
    if world.main:
        processes = f" in {world.size} processes" if world.distributed else ""
        held = next((f" ({note})" for note in dataset.notes if note.startswith("held out")), "")
        print(f"{'resuming' if checkpoint else 'training'} on {len(dataset.train):,} rows of {dataset.name} "
              f"({text or 'all text columns'}){processes}, validating on {len(val):,}{held}", file=sys.stderr)
    clf.fit(dataset.train.texts(text), dataset.labels_of(dataset.train), classes=dataset.classes,
            adapt_texts=adapt, validation_data=(val.texts(text), dataset.labels_of(val)), metadata=metadata,
            resume=checkpoint or False)
    if not world.main:
        return 0  # rank 0 writes the model directory
    out = clf.save_pretrained(out)
    last = clf.history_[-1]
    kept = kept_epoch(clf.history_)  # early stopping keeps its best epoch's weights
    print(f"saved {out} (validation accuracy {kept.val_accuracy:.4f}"
          f"{f', the weights of epoch {kept.epoch}' if kept is not last else ''}"
          f"{f', and a linear n-gram part at weight {clf.linear_weight_}' if clf.linear_part_ is not None else ''}"
          f"{', training interrupted' if last.interrupted else ''})")
    if getattr(clf, "embedding_coverage_", None) and not clf.progress:  # else fit has printed it
        from ..text.embeddings import format_coverage

        print(f"pretrained vectors {format_coverage(clf.embedding_coverage_)}")
    if last.interrupted and clf.checkpoint_dir is not None:
        print(f"to continue where it stopped: textrnn train --resume {out}")
    return 0
