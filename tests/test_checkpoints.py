"""Checkpoints and resume: a run killed at a random step and resumed ends with the weights of a run never
interrupted; damaged checkpoints are detected and passed over; a run's record says what it ran on."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from textrnn import TextClassifier, TextrnnError
from textrnn.training.checkpoints import Checkpointer, read_checkpoint

SMALL_RUN = ["--limit", "1000", "--cell", "gru", "--embedding-dim", "32", "--hidden-size", "16", "--epochs", "3",
             "--batch-size", "16", "--checkpoint-every", "10", "--dropout", "0.1", "--lr-schedule", "linear",
             "--weight-decay", "0.01", "--ngram-buckets", "4096"]  # the bag of n-grams, with small checkpoints


def _train_cli(data_root, out, *extra):
    return [sys.executable, "-m", "textrnn", "-q", "train", "--data-dir", str(data_root / "ag_news_mini"),
            *SMALL_RUN, "--out", str(out), *extra]


def _same_weights(a, b) -> bool:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# GRU by default; LSTM and SimpleRNN under -m slow (each ~13 s)
@pytest.mark.parametrize("cell", ["gru", pytest.param("lstm", marks=pytest.mark.slow),
                                  pytest.param("rnn", marks=pytest.mark.slow)])
def test_sigkill_at_a_random_step_then_resume_gives_the_same_weights(data_root, tmp_path, cell):
    """The default fast path (FastAdam, bucketed batches) for every cell."""
    kill_and_resume(data_root, tmp_path, "--cell", cell)


@pytest.mark.parametrize("flags", [
    pytest.param(["--precision", "bf16"], id="bf16", marks=pytest.mark.slow),
    pytest.param(["--optimizer", "adam"], id="adam", marks=pytest.mark.slow),
    pytest.param(["--optimizer", "lazy-adam"], id="lazy-adam", marks=pytest.mark.slow),
    pytest.param(["--batching", "shuffle"], id="shuffle", marks=pytest.mark.slow),
    pytest.param(["--batching", "sequential"], id="sequential", marks=pytest.mark.slow),
    pytest.param(["--lr-schedule", "plateau"], id="plateau", marks=pytest.mark.slow),
    pytest.param(["--cell", "rnn", "--optimizer", "adam", "--batching", "sequential"], id="rnn-adam-sequential",
                 marks=pytest.mark.slow),
])
def test_sigkill_and_resume_for_every_optimizer_batching_precision_and_schedule(data_root, tmp_path, flags):
    """The rest of the settings the README promises bitwise resume for (slow: `pytest -m slow`)."""
    kill_and_resume(data_root, tmp_path, *flags)


def kill_and_resume(data_root, tmp_path, *flags):
    """Train once whole; train again, SIGKILL it at a random step, resume: the same weights, bytes and history."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_train_cli(data_root, whole, *flags), check=True, capture_output=True)

    seed = random.randrange(1 << 30)
    target = random.Random(seed).randrange(20, 120)  # 3 epochs of 57 steps: kill well before the end
    proc = subprocess.Popen(_train_cli(data_root, killed, *flags), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoints = killed / "checkpoints"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        steps = [int(p.name[5:]) for p in checkpoints.glob("step-*")] if checkpoints.is_dir() else []
        if steps and max(steps) >= target:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed (seed {seed})"
    assert not (killed / "model.safetensors").exists()

    resumed = subprocess.run([sys.executable, "-m", "textrnn", "-q", "train", "--resume", str(killed)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _same_weights(whole, killed), f"killed at step >= {target} (seed {seed}), resumed, weights differ"
    # the same tensors, the same bytes
    assert (whole / "model.safetensors").read_bytes() == (killed / "model.safetensors").read_bytes()
    record = json.loads((killed / "trainer_state.json").read_text())
    original = json.loads((whole / "trainer_state.json").read_text())
    metrics = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert [[h[m] for m in metrics] for h in record["history"]] == \
        [[h[m] for m in metrics] for h in original["history"]]


def test_ctrl_c_checkpoints_and_a_damaged_newest_checkpoint_falls_back(data_root, tmp_path):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    subprocess.run(_train_cli(data_root, whole), check=True, capture_output=True)
    # a finished run keeps its last: 3 epochs of 57 batches (900 rows: 10 % of 1,000 are held out for validation)
    assert [p.name for p in (whole / "checkpoints").iterdir()] == ["step-00000171"]

    proc = subprocess.Popen(_train_cli(data_root, stopped), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((stopped / "checkpoints").glob("step-*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: stop after this step, checkpoint, validate, save
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert f"textrnn train --resume {stopped}" in stdout
    newest, previous = sorted((stopped / "checkpoints").glob("step-*"))[-2:][::-1]

    tensors = newest / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[: tensors.stat().st_size // 2])  # truncated mid-write
    with pytest.raises(TextrnnError, match="corrupted: tensors.safetensors does not match its recorded SHA-256"):
        read_checkpoint(newest)
    assert Checkpointer(stopped / "checkpoints").latest().path == previous

    result = subprocess.run([sys.executable, "-m", "textrnn", "-q", "train", "--resume", str(stopped)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "corrupted" in result.stderr and "falling back" in result.stderr
    assert _same_weights(whole, stopped)  # resumed from the checkpoint before the Ctrl-C one, same end


@pytest.fixture(scope="module")
def small_data(ag_news_mini):
    train, val = ag_news_mini.train.take(400), ag_news_mini.test.take(200)
    names = ag_news_mini.classes
    return (train.texts("title"), [names[i] for i in train.labels],
            (val.texts("title"), [names[i] for i in val.labels]))


def _small(tmp_path, **kw):
    params = dict(cell="lstm", embedding_dim=16, hidden_size=8, epochs=2, batch_size=32, progress=False,
                  checkpoint_dir=tmp_path / "ck", checkpoint_every=5, lr_schedule="constant", early_stopping=None,
                  ngram_buckets=4096)  # the recipe's bag of n-grams in a small table: small checkpoints
    return TextClassifier(**{**params, **kw})


def test_every_checkpoint_damaged_is_one_clear_error(small_data, tmp_path):
    X, y, val = small_data
    _small(tmp_path).fit(X, y, val)
    final = Checkpointer(tmp_path / "ck").paths()
    assert len(final) == 1  # a finished run keeps only its final checkpoint
    import shutil

    shutil.copytree(final[0], tmp_path / "ck" / "step-00000001")
    paths = Checkpointer(tmp_path / "ck").paths()
    (paths[-1] / "state.json").write_text("{not json")
    (paths[0] / "tokenizer.json").unlink()
    with pytest.raises(TextrnnError) as error:
        _small(tmp_path).fit(X, y, val, resume=True)
    message = str(error.value)
    assert "no intact checkpoint" in message and "state.json is not valid JSON" in message
    assert "tokenizer.json is missing" in message


def test_a_crash_while_writing_leaves_the_previous_checkpoint(small_data, tmp_path, monkeypatch):
    X, y, val = small_data
    _small(tmp_path, epochs=1).fit(X, y, val)
    before = [p.name for p in Checkpointer(tmp_path / "ck").paths()]
    import safetensors.torch

    def crash(tensors, path, metadata=None):
        open(path, "wb").write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        Checkpointer(tmp_path / "ck").save(999, {"x": torch.zeros(2)}, {})
    assert [p.name for p in Checkpointer(tmp_path / "ck").paths()] == before
    assert not [p for p in (tmp_path / "ck").iterdir() if p.name.startswith(".tmp")]
    read_checkpoint(Checkpointer(tmp_path / "ck").paths()[-1])  # still intact


def test_resume_refuses_other_data_or_settings(small_data, tmp_path):
    X, y, val = small_data
    _small(tmp_path).fit(X, y, val)
    with pytest.raises(TextrnnError, match="other settings: lr 0.003 -> 0.01"):
        _small(tmp_path, lr=0.01).fit(X, y, val, resume=True)
    with pytest.raises(TextrnnError, match="other train data"):
        _small(tmp_path).fit(X[:-1] + ["something else"], y, val, resume=True)
    with pytest.raises(TextrnnError, match="no checkpoint to resume from"):
        _small(tmp_path, checkpoint_dir=tmp_path / "empty").fit(X, y, val, resume=True)


def test_same_seed_same_metrics_and_a_full_run_record(small_data, tmp_path):
    X, y, val = small_data
    runs = [TextClassifier(cell="gru", embedding_dim=16, hidden_size=8, epochs=2, dropout=0.2, seed=seed,
                           progress=False).fit(X, y, val) for seed in (7, 7, 8)]
    metrics = [[(h.loss, h.accuracy, h.val_loss, h.val_accuracy) for h in r.history_] for r in runs]
    assert metrics[0] == metrics[1]
    assert metrics[0] != metrics[2]
    path = runs[0].save_pretrained(tmp_path / "model")
    record = json.loads((path / "trainer_state.json").read_text())["run"]
    assert record["params"]["seed"] == 7 and record["params"]["dropout"] == 0.2
    assert record["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert {"python", "numpy", "tokenizers", "textrnn"} <= set(record["versions"])
    assert record["data"]["train"]["rows"] == 400 and len(record["data"]["train"]["sha256"]) == 64
    assert record["data"]["validation"]["sha256"] != record["data"]["train"]["sha256"]


def test_a_fresh_run_clears_an_earlier_runs_checkpoints(small_data, tmp_path):
    X, y, val = small_data
    _small(tmp_path, epochs=2).fit(X, y, val)
    assert Checkpointer(tmp_path / "ck").paths()[-1].name == "step-00000026"  # 2 epochs of 13 batches
    _small(tmp_path, epochs=1).fit(X, y, val)
    # otherwise a resume would pick the earlier run's step 26 over this run's step 13
    assert [p.name for p in Checkpointer(tmp_path / "ck").paths()] == ["step-00000013"]


def test_a_finished_run_trains_on_to_more_epochs_as_if_never_stopped(small_data, tmp_path):
    X, y, val = small_data
    _small(tmp_path, epochs=2).fit(X, y, val)
    extended = _small(tmp_path, epochs=3).fit(X, y, val, resume=True)
    straight = _small(tmp_path / "straight", epochs=3).fit(X, y, val)
    a, b = extended.model_.state_dict(), straight.model_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h.epoch for h in extended.history_] == [1, 2, 3]
    # a linear schedule decays to zero at the last epoch: more epochs would be another run
    _small(tmp_path / "linear", epochs=2, lr_schedule="linear").fit(X, y, val)
    with pytest.raises(TextrnnError, match="other settings: epochs 2 -> 3"):
        _small(tmp_path / "linear", epochs=3, lr_schedule="linear").fit(X, y, val, resume=True)
