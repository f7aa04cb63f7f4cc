"""`textrnn tune`: Optuna trials on validation data, kept in SQLite, resumed with the trial count continuing,
pruned trials recorded as pruned, the best trial retrained to its own weights."""

import csv

import pytest

optuna = pytest.importorskip("optuna")

from textrnn import TextClassifier, TextrnnError, load_dataset  # noqa: E402
from textrnn.cli import main  # noqa: E402
from textrnn.tuning import DEFAULT_SPACE, SearchSpace, best_trial, tune  # noqa: E402

SPACE = "hidden_size: [8, 16]\nembedding_dim: 16\nlr: {low: 0.001, high: 0.01, log: true}\npooling: [last, max]\n"


def _trials(path):
    study = optuna.load_study(study_name="textrnn", storage=f"sqlite:///{path / 'study.db'}")
    return study.get_trials()


def test_tune_runs_trials_resumes_from_its_sqlite_file_and_retrains_the_best(data_root, tmp_path, capsys):
    (tmp_path / "space.yaml").write_text(SPACE)
    out = tmp_path / "tune"
    args = ["-q", "tune", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"), "--limit", "600",
            "--epochs", "2", "--space", str(tmp_path / "space.yaml"), "--out", str(out)]
    assert main([*args, "--trials", "3"]) == 0
    first = _trials(out)
    assert [t.number for t in first] == [0, 1, 2]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in first)
    capsys.readouterr()

    # run again with a larger count: the study continues from its file, numbering on, drawing new settings
    assert main([*args, "--trials", "5", "--no-retrain"]) == 0
    trials = _trials(out)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert [t.params for t in trials[:3]] == [t.params for t in first]  # the first three are untouched
    assert trials[3].params not in [t.params for t in first]
    assert all(t.params["hidden_size"] in (8, 16) and 0.001 <= t.params["lr"] <= 0.01 for t in trials)
    assert all(t.user_attrs["settings"]["embedding_dim"] == 16 for t in trials)  # the fixed value
    err = capsys.readouterr().err
    assert "holds 3 finished trial(s), running until 5" in err and "trial 3:" in err and "trial 0:" not in err

    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [int(r["trial"]) for r in rows] == [0, 1, 2, 3, 4]
    for name in ("optimization_history.png", "param_importances.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the model saved by the first run is the best of its three trials, retrained to the same validation accuracy
    best = max((t for t in first if t.state.name == "COMPLETE"), key=lambda t: (t.value, -t.number))
    clf = TextClassifier.from_pretrained(out / "model")
    kept = next((h for h in clf.history_ if h.best), clf.history_[-1])
    assert kept.val_accuracy == pytest.approx(best.value, abs=1e-9)
    assert clf.model_.config.hidden_size == best.params["hidden_size"]
    assert clf.model_.config.embedding_dim == 16
    # and the linear n-gram part ("auto") was judged against that network on the same validation texts
    assert clf.run_record_["linear_part"]["network_accuracy"] == pytest.approx(best.value)
    sst2 = load_dataset("sst2", data_root / "sst2")
    network_alone = TextClassifier.from_pretrained(out / "model")
    network_alone.linear_part_ = None
    assert network_alone.score(sst2.validation.texts(), sst2.labels_of(sst2.validation)) == pytest.approx(best.value)


def test_a_pruned_trial_is_recorded_as_pruned_and_stops_after_its_epoch(data_root, tmp_path):
    sst2 = load_dataset("sst2", data_root / "sst2", limit=400)
    val = sst2.validation
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = tune(sst2.train.texts(), sst2.labels_of(sst2.train), (val.texts(), sst2.labels_of(val)),
                 space=SearchSpace({"hidden_size": [8], "embedding_dim": 8}), trials=2, storage=storage,
                 params={"epochs": 4}, pruner=optuna.pruners.ThresholdPruner(lower=1.01), progress=False)
    trials = optuna.load_study(study_name="textrnn", storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert all(t.user_attrs["epochs_run"] == 1 and list(t.intermediate_values) == [1] for t in trials)
    with pytest.raises(TextrnnError, match="no completed trial"):
        best_trial(study)


def test_a_bad_search_space_is_one_clear_error(data_root, tmp_path, capsys):
    with pytest.raises(TextrnnError, match="'hidden', which is not a parameter"):
        SearchSpace({"hidden": [8]})
    with pytest.raises(TextrnnError, match="needs `low` and `high`"):
        SearchSpace({"lr": {"low": 0.1}})
    with pytest.raises(TextrnnError, match="log range .* above 0"):
        SearchSpace({"weight_decay": {"low": 0, "high": 0.1, "log": True}})
    (tmp_path / "bad.yaml").write_text("hidden_size: [8, 16\n")
    assert main(["tune", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"), "--space",
                 str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("textrnn: error: ") and "is not valid YAML" in err[0]


def test_the_best_trial_prints_as_flags_train_accepts():
    """The "best:" line is pasted into `textrnn train`: a None setting, a boolean and max_len's "no cut" must
    come out as the flags the parser turns back into the same TextClassifier arguments."""
    from textrnn.cli import build_parser
    from textrnn.cli.flags import classifier_params
    from textrnn.cli.tune import _as_flag

    settings = {"embeddings": None, "mask": False, "bidirectional": True, "max_len": None, "lr": 0.00106,
                "pooling": "concat", "embedding_dropout": 0.25, "adversarial": "auto"}
    line = " ".join(_as_flag(k, v) for k, v in settings.items())
    assert line == ("--embeddings none --no-mask --bidirectional --max-len 0 --lr 0.00106 --pooling concat "
                    "--embedding-dropout 0.25 --adversarial auto")
    args = build_parser().parse_args(["train", "--dataset", "sst2", *line.split()])
    params, _ = classifier_params(args)
    assert {k: params[k] for k in settings} == settings
    # every choice of the default space is one TextClassifier takes and `train` can be given back
    for name, choices in DEFAULT_SPACE.items():
        for value in choices if isinstance(choices, list) else [choices["low"], choices["high"]]:
            TextClassifier(**{name: value})._check_params()
            args = build_parser().parse_args(["train", "--dataset", "sst2", *_as_flag(name, value).split()])
            assert classifier_params(args)[0][name] == value, (name, value)
