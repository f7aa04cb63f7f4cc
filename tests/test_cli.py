import json
import subprocess
import sys

import numpy as np
import pytest

from textrnn.cli import main


def run_cli(capsys, *argv):
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, data_root):
    """`textrnn train --preset lesson-bilstm` end to end on ag_news_mini, 2 epochs."""
    out = tmp_path_factory.mktemp("cli") / "model"
    code = main(["-q", "train", "--preset", "lesson-bilstm", "--data-dir", str(data_root / "ag_news_mini"),
                 "--epochs", "2", "--out", str(out)])
    assert code == 0
    return out


def test_train_evaluate_predict_end_to_end(trained_model, data_root, capsys):
    code, out, _ = run_cli(capsys, "evaluate", str(trained_model), "--data-dir", str(data_root / "ag_news_mini"),
                           "--json")
    assert code == 0
    metrics = json.loads(out)
    assert metrics["n"] == 1600 and metrics["accuracy"] >= 0.77
    assert sum(map(sum, metrics["confusion_matrix"])) == 1600
    assert set(metrics["per_class"]) == {"World", "Sports", "Business", "Sci/Tech"}

    report = trained_model.parent / "report"
    code, out, _ = run_cli(capsys, "evaluate", str(trained_model), "--data-dir", str(data_root / "ag_news_mini"),
                           "--report", str(report))
    assert code == 0 and "accuracy" in out and "confusion matrix" in out and "Sci/Tech" in out
    saved = json.loads((report / "metrics.json").read_text())
    assert saved["confusion_matrix"] == metrics["confusion_matrix"]
    png = (report / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "macro-F1" in (report / "report.txt").read_text()
    curves = (trained_model / "training.png").read_bytes()
    assert curves.startswith(b"\x89PNG") and len(curves) > 10_000

    code, out, _ = run_cli(capsys, "predict", str(trained_model), "--json",
                           "Stocks fell sharply as oil prices hit a record high on Wall Street",
                           "The striker scored twice as the home team won the championship final")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in rows] == ["Business", "Sports"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)


def test_the_verbs_that_load_a_model_take_device(trained_model, capsys):
    import torch

    text = "Stocks fell sharply as oil prices hit a record high on Wall Street"
    on_cpu = [run_cli(capsys, verb, str(trained_model), text, "--json", "--device", "cpu")
              for verb in ("predict", "explain")]
    assert [code for code, _, _ in on_cpu] == [0, 0]
    assert json.loads(on_cpu[0][1])["label"] == json.loads(on_cpu[1][1])["label"] == "Business"
    code, _, err = run_cli(capsys, "predict", str(trained_model), text, "--device", "tpu")
    assert code == 2 and "unknown device 'tpu'" in err
    code, _, err = run_cli(capsys, "predict", str(trained_model), text, "--runtime", "onnx", "--device", "cpu")
    assert code == 2 and "--device is for --runtime torch" in err
    if not torch.cuda.is_available():  # the GPU's own runs are tests/test_cuda.py's
        code, _, err = run_cli(capsys, "evaluate", str(trained_model), "--device", "cuda")
        assert code == 2 and "PyTorch sees no CUDA device here" in err


def test_predict_reads_a_file_and_stdin(trained_model, tmp_path, capsys, monkeypatch):
    texts = tmp_path / "texts.txt"
    texts.write_text("NASA launches a new Mars probe\n\nShares of Google rise after earnings\n")
    code, out, _ = run_cli(capsys, "predict", str(trained_model), "--file", str(texts), "--top", "1")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[2] == "NASA launches a new Mars probe"
    result = subprocess.run([sys.executable, "-m", "textrnn", "predict", str(trained_model), "--json"],
                            input="Rebels attack the capital as the president flees\n", capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    from textrnn import TextClassifier

    clf = TextClassifier.from_pretrained(trained_model)
    expected = clf.predict_proba(["Rebels attack the capital as the president flees"])[0]
    answer = json.loads(result.stdout)
    assert answer["label"] == clf.classes_[int(np.argmax(expected))]
    got = [answer["probabilities"][c] for c in clf.classes_]
    assert np.allclose(got, expected, atol=1e-4)  # stdin read the same text as the Python API


def test_summary_of_a_preset_and_of_a_model(trained_model, capsys):
    code, out, _ = run_cli(capsys, "summary", "--preset", "lesson-simple-titles")
    assert code == 0 and "1,281,364" in out and "SimpleRNN" in out
    code, out, _ = run_cli(capsys, "summary", str(trained_model))
    assert code == 0 and "2,758,148" in out and "Bidirectional LSTM" in out


@pytest.mark.parametrize("argv,message", [
    (["train", "--data-dir", "/nonexistent/ag"], "does not exist"),
    (["train", "--preset", "lesson-gpt"], "unknown preset"),
    (["evaluate", "/nonexistent/model"], "no model directory"),
    (["predict", "/nonexistent/model", "x"], "no model directory"),
])
def test_errors_are_one_line_without_traceback(argv, message):
    result = subprocess.run([sys.executable, "-m", "textrnn", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_malformed_row_is_reported_by_the_cli(tmp_path):
    (tmp_path / "train.csv").write_text('"1","a","b"\n"2","broken"\n')
    (tmp_path / "test.csv").write_text('"1","a","b"\n')
    result = subprocess.run([sys.executable, "-m", "textrnn", "train", "--data-dir", str(tmp_path),
                             "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "train.csv, line 2: expected 3 fields" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()
    debug = subprocess.run([sys.executable, "-m", "textrnn", "--debug", "train", "--data-dir", str(tmp_path)],
                           capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_lesson_runs_all_four_experiments(data_root, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "lesson", "--data-dir", str(data_root / "ag_news_mini"), "--limit", "400",
                           "--out", str(tmp_path))
    assert code == 0
    for name in ("lesson-simple-titles", "lesson-simple-masked", "lesson-lstm", "lesson-bilstm"):
        assert name in out
    assert "0.7995" in out and "0.8870" in out  # the published numbers beside ours
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["train_rows"] == 400
    rows = {r["experiment"]: r for r in record["results"]}
    assert rows["lesson-bilstm"]["params_keras"] == 2_758_148
    assert all(r["train_rows"] == 400 for r in rows.values())
    # 400 rows and one epoch leave these models near chance (0.23-0.26 measured): the check is that the record
    # holds the figures the table printed
    assert all(f"{r['val_accuracy']:.4f}" in out for r in rows.values()), out
    assert (tmp_path / "lesson-lstm" / "model.safetensors").is_file()


def test_ctrl_c_ends_the_epoch_early_and_still_saves(data_root, tmp_path):
    import signal

    out = tmp_path / "model"
    proc = subprocess.Popen([sys.executable, "-m", "textrnn", "train", "--preset", "lesson-bilstm",
                             "--batching", "sequential", "--optimizer", "adam", "--epochs", "5",
                             "--data-dir", str(data_root / "ag_news_mini"), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "epoch 1/5" not in seen:  # the progress bar appears when the first epoch's loop starts
        char = proc.stderr.read(1)
        assert char, f"training ended before its first epoch: {seen}"
        seen += char
    import time

    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "interrupted" in seen + stderr and "training interrupted" in stdout
    config = json.loads((out / "trainer_state.json").read_text())
    assert len(config["history"]) == 1 and config["history"][0]["interrupted"]
    assert 0 < config["history"][0]["samples"] < 6000
    # and a checkpoint to resume from, at the step where it stopped
    from textrnn.training.checkpoints import Checkpointer

    checkpoint = Checkpointer(out / "checkpoints").latest()
    position = checkpoint.state["position"]
    assert position["epoch"] == 1 and position["seen"] == config["history"][0]["samples"]
    assert f"textrnn train --resume {out}" in stdout


def test_compare_prints_runs_side_by_side(trained_model, data_root, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    code, _, _ = run_cli(capsys, "train", "--data-dir", str(data_root / "ag_news_mini"), "--limit", "600",
                         "--cell", "gru", "--hidden-size", "8", "--embedding-dim", "16", "--epochs", "1",
                         "--batch-size", "16", "--tensorboard", "--no-checkpoints", "--out", str(other))
    assert code == 0
    with_metrics = tmp_path / "bilstm"
    shutil.copytree(trained_model, with_metrics)
    # no --data-dir: evaluate reads the test split from where the model's training read its data
    code, _, _ = run_cli(capsys, "evaluate", str(with_metrics), "--report", str(with_metrics))
    assert code == 0
    code, out, _ = run_cli(capsys, "compare", str(with_metrics), str(other))
    assert code == 0
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "bilstm" in lines["run"] and "other" in lines["run"]
    assert "BiLSTM 2x64" in lines["model"] and "BiGRU 1x8" in lines["model"]
    code, out, _ = run_cli(capsys, "compare", "--json", str(with_metrics), str(other))
    rows = json.loads(out)
    metrics = json.loads((with_metrics / "metrics.json").read_text())
    assert rows[0]["test accuracy"] == metrics["accuracy"] and "test accuracy" not in rows[1]
    assert metrics["n"] == 1600 and sum(map(sum, metrics["confusion_matrix"])) == 1600
    assert rows[1]["epochs run"] == 1 and 0 < rows[1]["val accuracy"] < 1
    # --tensorboard wrote event files TensorBoard reads back, one point per epoch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(other / "tensorboard"))
    events.Reload()
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("val_accuracy")] == [1]
    assert [e.step for e in events.Scalars("step/loss")] == [1, 26]  # every 25 of the 38 steps
    code, _, err = run_cli(capsys, "compare", str(tmp_path / "nothing"))
    assert code == 2 and "no model directory at" in err


def test_a_negative_max_len_is_a_one_line_error(data_root):  # 0 keeps whole texts (the default cuts at 400)
    result = subprocess.run([sys.executable, "-m", "textrnn", "train", "--data-dir", str(data_root / "ag_news_mini"),
                             "--limit", "200", "--max-len", "-1", "--no-checkpoints", "--out", "/nonexistent/x"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "textrnn: error: max_len must be at least 1 token, got -1"
    assert "Traceback" not in result.stderr


def test_predict_into_a_closed_pipe_ends_quietly(trained_model, tmp_path):
    texts = tmp_path / "many.txt"
    texts.write_text("Stocks fell as oil hit a record\n" * 20000)
    result = subprocess.run(f"{sys.executable} -m textrnn predict {trained_model} --file {texts} | head -n 1",
                            shell=True, capture_output=True, text=True)
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith("Business\t")
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


def test_saving_leaves_matplotlibs_backend_alone(trained_model, tmp_path):
    code = ("import matplotlib; matplotlib.use('svg'); from textrnn import TextClassifier; "
            f"TextClassifier.from_pretrained({str(trained_model)!r}).save_pretrained({str(tmp_path / 'copy')!r}); "
            "import matplotlib.pyplot as plt; print(matplotlib.get_backend(), len(plt.get_fignums()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "0"]
    assert (tmp_path / "copy" / "training.png").read_bytes().startswith(b"\x89PNG")
