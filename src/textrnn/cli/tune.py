"""`textrnn tune`: search hyperparameters with Optuna on the validation data, keep the study in a database, and
save the best trial's model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import TextrnnError
from .flags import add_data_flags, data_source

DEFAULT_OUT = "textrnn-tune"
DEFAULT_VAL_SPLIT = 0.1  # carved from the training rows when the data has no validation split


def add_parser(sub) -> None:
    p = sub.add_parser("tune", help="search hyperparameters (Optuna) on validation data and save the best model")
    add_data_flags(p)
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=int, default=20, help="run until the study holds this many finished trials "
                   "(completed or pruned), counting those of earlier runs and other workers (default 20)")
    g.add_argument("--space", metavar="FILE", help="YAML or JSON: parameter -> [choices], {low, high, log}, or "
                   "a fixed value (default: cell, GloVe or not, hidden size, layers, dropout, embedding dropout, "
                   "pooling, the bag of n-grams and its dropout, adversarial training, lr, batch size, weight "
                   "decay, schedule)")
    g.add_argument("--epochs", type=int, default=5, help="most epochs per trial; a trial stops after "
                   "--patience epochs without a better validation accuracy (default 5)")
    g.add_argument("--patience", type=int, default=2, help="early stopping within a trial (default 2)")
    g.add_argument("--seed", type=int, help="seed of every trial's training and of the sampler (default 0)")
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="start no trial after this many seconds")
    g.add_argument("--storage", metavar="URL", help="where the study lives (default: sqlite:///OUT/study.db); "
                   "give several workers the same URL to search together")
    g.add_argument("--study", default="textrnn", help="the study's name in the storage (default: %(default)s)")
    g.add_argument("--out", metavar="DIR", help=f"trials.csv, the plots and the best model/ (default: {DEFAULT_OUT})")
    g.add_argument("--no-retrain", action="store_true", help="do not train and save the best trial's model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.files import stratified_split

    if args.trials < 1 or args.epochs < 1 or args.patience < 1:
        raise TextrnnError("--trials, --epochs and --patience must be at least 1")
    seed = args.seed or 0
    dataset = data_source(args).load()
    # Optuna and torch only now, so that a bad data flag is reported without waiting for them
    from .. import tuning
    from ..training import kept_epoch

    space = tuning.SearchSpace.from_file(args.space) if args.space else tuning.SearchSpace()
    out = Path(args.out or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(out / tuning.STUDY_FILE).resolve()}"
    text = args.text or dataset.text
    train, validation = dataset.train, dataset.validation
    if validation is None:  # never choose on the test split
        train, validation = stratified_split(dataset.train, DEFAULT_VAL_SPLIT, seed)
        carved = f" (carved from the training rows: {DEFAULT_VAL_SPLIT:.0%}, stratified)"
    else:
        carved = ""
    data = dict(texts=train.texts(text), labels=dataset.labels_of(train), classes=dataset.classes,
                validation_data=(validation.texts(text), dataset.labels_of(validation)))
    params = {"epochs": args.epochs, "seed": seed}
    study = tuning.open_study(storage, args.study, seed)
    done = tuning.finished(study)
    print(f"tuning on {len(train):,} rows of {dataset.name}, validating on {len(validation):,}{carved}; study "
          f"{args.study!r} in {storage} holds {done} finished trial(s), running until {args.trials}",
          file=sys.stderr)

    def on_trial(trial) -> None:
        value = (f"pruned after epoch {max(trial.intermediate_values)}" if trial.state.name == "PRUNED"
                 else f"val_accuracy {trial.value:.4f} (epoch {trial.user_attrs.get('epoch')})")
        settings = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        print(f"trial {trial.number}: {value}, {trial.user_attrs.get('seconds')} s: {settings}", file=sys.stderr,
              flush=True)

    try:
        tuning.tune(**data, space=space, trials=args.trials, params=params, patience=args.patience,
                    timeout=args.timeout, progress=not args.quiet, on_trial=on_trial, study=study)
    except KeyboardInterrupt:
        print(f"tuning stopped: {tuning.finished(study)} finished trial(s) are kept in {storage}; run the same "
              f"command to continue", file=sys.stderr)
        return 130
    rows = tuning.trial_rows(study)
    _print_table(rows)
    tuning.write_trials(study, out / tuning.TRIALS_FILE)
    plots = tuning.write_plots(study, out)
    best = tuning.best_trial(study)
    print(f"best: trial {best.number}, val_accuracy {best.value:.4f} (epoch {best.user_attrs.get('epoch')}): "
          + " ".join(_as_flag(k, v) for k, v in best.params.items()))
    print(f"wrote {out / tuning.TRIALS_FILE}" + "".join(f", {p}" for p in plots))
    if not args.no_retrain:
        clf = tuning.retrain_best(study, **data, params=params, patience=args.patience, progress=not args.quiet)
        saved = clf.save_pretrained(out / tuning.BEST_MODEL)
        kept = kept_epoch(clf.history_)
        print(f"saved {saved} (the best trial retrained: validation accuracy {kept.val_accuracy:.4f})")
    return 0


MEASURED = ("trial", "state", "val_accuracy", "epoch", "seconds")  # trial_rows' first columns; settings follow


def _short(value) -> str:
    if value is None:
        return "none"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _as_flag(name: str, value) -> str:
    """A trial's setting as the `textrnn train` flag that gives it (--embeddings none, --no-mask, --max-len 0)."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    if value is None and name == "max_len":
        return f"{flag} 0"
    return f"{flag} {_short(value)}"


def _print_table(rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    # a blank is a figure not there (a running trial's accuracy); a setting of None reads "none"
    cells = [["" if c not in row or (row[c] is None and c in MEASURED) else _short(row[c]) for c in columns]
             for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
