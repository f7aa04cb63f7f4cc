"""Hyperparameter search for TextClassifier with Optuna: `tune` runs trials until the study holds as many
finished ones as asked, `SearchSpace` says what each trial may vary, `retrain_best` rebuilds the best trial's model.

A trial trains on the training texts and is scored on the validation texts only (its best epoch's validation
accuracy; early stopping keeps that epoch's weights), never on test data. TPE proposes the settings; a trial
whose validation accuracy after an epoch is below the median of earlier trials' at the same epoch is pruned
(stopped and recorded as pruned). The study lives in a database (SQLite by default), so a search that stops
(Ctrl-C, a crash) continues where it was when run again, and several processes can search one study together.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import TextrnnError
from .estimator import TextClassifier
from .training import Callback, kept_epoch

STUDY_FILE = "study.db"
TRIALS_FILE = "trials.csv"
HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"
BEST_MODEL = "model"
DEFAULT_PATIENCE = 2  # epochs without a better validation accuracy before a trial stops

# What a trial varies when no space file is given: the recipe's knobs, around textrnn's defaults.
DEFAULT_SPACE: dict[str, Any] = {
    "cell": ["lstm", "gru"],
    "embeddings": ["auto", None],  # the recipe's GloVe 6B 50-d start (for word tokens), or a random 128-d one
    "hidden_size": [64, 128, 256],
    "layers": [1, 2],
    "dropout": {"low": 0.0, "high": 0.5},
    "embedding_dropout": {"low": 0.0, "high": 0.4},
    "pooling": ["last", "max", "mean", "concat"],
    "ngrams": [0, 2],  # without or with the bag of words and bigrams beside the RNN
    "ngram_dropout": {"low": 0.0, "high": 0.8},
    # the recipe's adversarial training, at the distance that suits the embedding's start ("auto": 1.0 on GloVe, 0
    # on a random start, whose small rows a fixed distance would swamp), or none
    "adversarial": ["auto", 0.0],
    "lr": {"low": 3e-4, "high": 1e-2, "log": True},
    "batch_size": [16, 32, 64],
    "weight_decay": [0.0, 1e-4, 1e-3, 1e-2],
    "lr_schedule": ["constant", "linear"],
}
# TextClassifier parameters that say where and how a run is watched, not what it learns; and the linear n-gram
# part, which is fitted after the network and chooses its own weight on the validation data a trial is scored on
NOT_TUNABLE = ("checkpoint_dir", "checkpoint_every", "tensorboard_dir", "progress", "device", "early_stopping",
               "monitor", "linear_part")


class SearchSpace:
    """What each trial may vary: parameter name -> a list (one of these values), a mapping with `low` and
    `high` (a float range; an int range when both are whole numbers; optional `log: true` and `step`), or a
    single value (fixed). Names are TextClassifier's parameters."""

    def __init__(self, spec: dict[str, Any] | None = None):
        spec = dict(DEFAULT_SPACE if spec is None else spec)
        allowed = set(TextClassifier().get_params()) - set(NOT_TUNABLE)
        for name, value in spec.items():
            if name not in allowed:
                raise TextrnnError(f"the search space names {name!r}, which is not a parameter a trial can vary; "
                                   f"choose from {', '.join(sorted(allowed))}")
            if isinstance(value, list) and not value:
                raise TextrnnError(f"the search space gives {name!r} an empty list of choices")
            if isinstance(value, dict):
                unknown = set(value) - {"low", "high", "log", "step"}
                if unknown or not {"low", "high"} <= set(value):
                    raise TextrnnError(f"the search space's range for {name!r} needs `low` and `high` (and "
                                       f"optionally `log`, `step`), got {sorted(value)}")
                low, high = value["low"], value["high"]
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) \
                        or low > high:
                    raise TextrnnError(f"the search space's range for {name!r} must be two numbers, low <= high; "
                                       f"got {low!r} and {high!r}")
                if value.get("log") and low <= 0:
                    raise TextrnnError(f"the search space's log range for {name!r} must start above 0, got {low}")
        self.spec = spec

    @classmethod
    def from_file(cls, path: str | Path) -> "SearchSpace":
        """A space from a YAML or JSON file holding one mapping."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise TextrnnError(f"cannot read the search space {path}: {exc.strerror}") from None
        try:
            if path.suffix == ".json":
                spec = json.loads(text)
            else:
                import yaml

                spec = yaml.safe_load(text)
        except Exception as exc:  # json and yaml raise their own error types
            raise TextrnnError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                               f"{' '.join(str(exc).split())[:200]}") from None
        if not isinstance(spec, dict):
            raise TextrnnError(f"{path} must hold a mapping of parameter names to choices or ranges")
        return cls(spec)

    def suggest(self, trial) -> dict[str, Any]:
        """The trial's settings: one value for each name."""
        params = {}
        for name, value in self.spec.items():
            if isinstance(value, list):
                params[name] = trial.suggest_categorical(name, value)
            elif isinstance(value, dict):
                low, high, log, step = value["low"], value["high"], bool(value.get("log")), value.get("step")
                if isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int)):
                    params[name] = trial.suggest_int(name, low, high, step=step or 1, log=log)
                else:
                    params[name] = trial.suggest_float(name, float(low), float(high), step=step, log=log)
            else:
                params[name] = value
        return params


class ReportToTrial(Callback):
    """Reports each epoch's validation accuracy to the Optuna trial, and stops the run when the pruner says so."""

    def __init__(self, trial):
        self.trial = trial
        self.pruned = False

    def on_epoch_end(self, loop, result) -> None:
        if result.interrupted or result.val_accuracy is None:
            return
        self.trial.report(result.val_accuracy, result.epoch)
        if self.trial.should_prune():
            self.pruned = True
            loop.position.stopped_early = True  # the run ends after this epoch, the loop's own way


def finished(study) -> int:
    """Trials that ran to their end: completed or pruned (not failed, not running)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def open_study(storage: str, study_name: str, seed: int = 0, pruner=None):
    """The study in `storage` (created if new), with the TPE sampler and, unless given, the median pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # textrnn prints its own line per trial, and why it stopped
    if storage.startswith(("sqlite:", "postgresql", "mysql")):
        # a process that dies mid-trial stops beating; the next worker marks its trial failed and moves on
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna calls the heartbeat experimental
            storage = optuna.storages.RDBStorage(storage, heartbeat_interval=30, grace_period=90)
    pruner = pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize", pruner=pruner,
                                    load_if_exists=True)
    except Exception as exc:  # SQLAlchemy's and Optuna's errors for a bad URL or a locked/unreadable database
        raise TextrnnError(f"cannot open the study {study_name!r} in {storage}: "
                           f"{' '.join(str(exc).split())[:300]}") from None
    # seeded by the trials already there, so that a resumed search or a second worker draws new settings
    # rather than the first run's again; a fresh study with a seed draws the same ones every time
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))
    return study


def tune(
    texts: Sequence[str],
    labels: Sequence,
    validation_data: tuple[Sequence[str], Sequence],
    classes: Sequence[str] | None = None,
    space: SearchSpace | None = None,
    trials: int = 20,
    storage: str = f"sqlite:///{STUDY_FILE}",
    study_name: str = "textrnn",
    params: dict | None = None,
    patience: int = DEFAULT_PATIENCE,
    timeout: float | None = None,
    pruner=None,
    progress: bool = True,
    on_trial: Callable[[Any], None] | None = None,
    study=None,
):
    """Run trials until the study holds `trials` finished ones (or `timeout` seconds pass); the study.

    params: TextClassifier parameters every trial shares (epochs, seed, tokenizer, ...), under the space's.
    on_trial: called with each finished trial (the CLI prints a line).
    study: a study `open_study` gave, instead of opening `study_name` in `storage` (and `pruner`, the seed).
    A Ctrl-C during a trial ends that trial as failed (it is not counted) and raises KeyboardInterrupt.
    """
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    space = space or SearchSpace()
    params = dict(params or {})
    study = study or open_study(storage, study_name, seed=int(params.get("seed", 0)), pruner=pruner)
    study.set_user_attr("space", space.spec)  # what this study searched, for whoever reads the database

    def objective(trial) -> float:
        settings = {**params, **space.suggest(trial)}
        trial.set_user_attr("settings", settings)  # with the space's fixed values, which trial.params leaves out
        report = ReportToTrial(trial)
        started = time.perf_counter()
        # a trial is scored on its network's validation accuracy: the linear part would only add its fitting time
        clf = TextClassifier(**{**settings, "linear_part": None}, early_stopping=patience, monitor="val_accuracy",
                             progress=progress)
        clf.fit(texts, labels, validation_data=validation_data, classes=classes, callbacks=[report],
                metadata={"study": study.study_name, "trial": trial.number})
        if clf.history_[-1].interrupted:
            raise KeyboardInterrupt  # a trial cut short says nothing about its settings
        kept = kept_epoch(clf.history_)
        trial.set_user_attr("epoch", kept.epoch)
        trial.set_user_attr("epochs_run", len(clf.history_))
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        if report.pruned:
            import optuna

            raise optuna.TrialPruned(f"validation accuracy {clf.history_[-1].val_accuracy:.4f} "
                                     f"after epoch {clf.history_[-1].epoch}")
        return kept.val_accuracy

    def report_trial(study_, trial) -> None:
        if on_trial is not None and trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            on_trial(trial)

    remaining = trials - finished(study)
    if remaining > 0:
        # MaxTrialsCallback also stops this worker when other workers on the same storage reach the count
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for the heartbeat
            study.optimize(objective, n_trials=remaining, timeout=timeout, catch=(),
                           callbacks=[MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                                      report_trial])
    return study


def best_trial(study):
    """The completed trial with the highest validation accuracy."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise TextrnnError(f"the study {study.study_name!r} has no completed trial yet (all pruned or failed)")
    return max(complete, key=lambda t: (t.value, -t.number))


def retrain_best(study, texts, labels, validation_data, classes=None, params: dict | None = None,
                 patience: int = DEFAULT_PATIENCE, progress: bool = True) -> TextClassifier:
    """The best trial's run again with its own settings (the same seed, data and epochs give its weights)."""
    trial = best_trial(study)
    settings = {**(params or {}), **trial.user_attrs.get("settings", {}), **trial.params}
    clf = TextClassifier(**settings, early_stopping=patience, monitor="val_accuracy", progress=progress)
    return clf.fit(texts, labels, validation_data=validation_data, classes=classes,
                   metadata={"study": study.study_name, "trial": trial.number, "tuned_params": trial.params})


def trial_rows(study) -> list[dict]:
    """One row per trial: number, state, validation accuracy, kept epoch, seconds, then the settings."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        value = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)]
                                                     if t.intermediate_values else None)
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     "val_accuracy": None if value is None or math.isnan(value) else round(value, 4),
                     "epoch": t.user_attrs.get("epoch"), "seconds": t.user_attrs.get("seconds"), **t.params})
    return rows


def write_trials(study, path: Path) -> Path:
    rows = trial_rows(study)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_plots(study, directory: Path) -> list[Path]:
    """Optuna's optimization-history and parameter-importance plots as PNGs (importance needs two or more
    completed trials that differ); the files written."""
    import matplotlib.pyplot as plt  # Optuna's matplotlib plots draw on pyplot figures
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    for name, plot in ((HISTORY_PLOT, optuna_plots.plot_optimization_history),
                       (IMPORTANCE_PLOT, optuna_plots.plot_param_importances)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = plot(study)
            except (ValueError, RuntimeError):  # too few completed trials for importances
                continue
        figure = axes.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figure.savefig(directory / name, dpi=100)
        plt.close(figure)
        written.append(directory / name)
    return written
