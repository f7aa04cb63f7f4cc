"""The package's layers hold (import-linter), and a deliberate upward import is caught."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT)], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_layers_contract_is_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "textrnn layers KEPT" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    # a copy of the package in which the data layer reaches up into training
    shutil.copytree(ROOT / "src", tmp_path / "src")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    batching = tmp_path / "src" / "textrnn" / "data" / "batching.py"
    batching.write_text(batching.read_text() + "\nfrom ..training import fit  # noqa: E402,F401\n")
    env_path = str(tmp_path / "src")
    result = subprocess.run([str(LINT)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "textrnn.data.batching -> textrnn.training" in result.stdout


@pytest.mark.parametrize("module", ["textrnn.cli", "textrnn.lesson", "textrnn.pretrained", "textrnn.evaluation"])
def test_every_layer_imports_on_its_own(module):
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_bad_training_file_is_reported_before_torch_and_scikit_learn_are_imported(tmp_path):
    # `import textrnn` and the CLI import them only when a verb needs them: an error waits for neither
    bad = tmp_path / "train.csv"
    bad.write_text("label,text\na,x\nb,y,z\n")
    program = ("import sys\nfrom textrnn.cli import main\nstatus = main(['train', '--train', sys.argv[1]])\n"
               "heavy = sorted(m for m in ('torch', 'sklearn') if m in sys.modules)\nprint(status, heavy)\n")
    result = subprocess.run([sys.executable, "-c", program, str(bad)], capture_output=True, text=True, timeout=60)
    assert result.stdout.split("\n")[0] == "2 []", result.stdout + result.stderr
    assert "line 3: expected 2 fields, found 3" in result.stderr
    loaded = subprocess.run([sys.executable, "-c", "import textrnn; print(textrnn.TextClassifier.__name__)"],
                            capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "TextClassifier", loaded.stderr


def test_every_verb_checks_its_model_directory_or_data_before_importing_torch(tmp_path, data_root):
    # "no model directory" in a fraction of a second, not after 3-4 s of imports; one process for all the verbs
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.mkdir()
    verbs = [["evaluate", "{}"], ["predict", "{}", "a text"], ["explain", "{}", "a text"], ["generate", "{}"],
             ["lm", "evaluate", "{}"], ["export", "{}"], ["serve", "{}"], ["summary", "{}"],
             ["train", "--train", str(data_root / "sst2" / "train.csv.gz"), "--init-from", "{}"]]
    program = ("import json, sys\nfrom textrnn.cli import main\nverbs, directory = json.loads(sys.argv[1]), sys.argv[2]\n"
               "for verb in verbs:\n    status = main([a.replace('{}', directory) for a in verb])\n"
               "    print(status, 'torch' in sys.modules, flush=True)\n")
    for directory, message in ((missing, f"no model directory at {missing}"),
                               (empty, f"{empty} is not a textrnn model: config.json is missing")):
        result = subprocess.run([sys.executable, "-c", program, json.dumps(verbs), str(directory)],
                                capture_output=True, text=True, timeout=120)
        assert result.stdout.splitlines() == ["2 False"] * len(verbs), result.stdout + result.stderr
        assert result.stderr.count(message) == len(verbs), result.stderr
    # and the verbs that read training texts, before torch and Optuna
    verbs = [["lm", "train", "--corpus", "{}"], ["tune", "--train", "{}"]]
    result = subprocess.run([sys.executable, "-c", program, json.dumps(verbs), str(missing)],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines() == ["2 False"] * len(verbs), result.stdout + result.stderr
    assert result.stderr.count(f"{missing}") == len(verbs), result.stderr
    # and the training verbs refuse an --out that holds something else before they train, not after
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("not a model")
    train = str(data_root / "sst2" / "train.csv.gz")
    verbs = [["train", "--train", train, "--out", "{}"], ["train", "--train", train, "--pretrain", "--out", "{}"],
             ["lm", "train", "--corpus", train, "--out", "{}"]]
    result = subprocess.run([sys.executable, "-c", program, json.dumps(verbs), str(other)],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines() == ["2 False"] * len(verbs), result.stdout + result.stderr
    assert result.stderr.count(f"{other} exists and is not a textrnn model directory") == len(verbs), result.stderr


def test_training_from_the_command_line_reaches_its_first_step_without_scikit_learn(tmp_path, data_root):
    # scikit-learn's base classes import SciPy (about a second here); the command line trains with
    # BaseTextClassifier, so its start-up is torch's import and textrnn's own work (bench/startup.py)
    program = ("import sys\nfrom textrnn.training import loop\noriginal = loop.Loop.call\n"
               "def call(self, hook, *args):\n"
               "    if hook == 'on_step_end' and not hasattr(loop, 'seen'):\n"
               "        loop.seen = sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules)\n"
               "        print('first step:', loop.seen, flush=True)\n"
               "    return original(self, hook, *args)\n"
               "loop.Loop.call = call\nfrom textrnn.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", program, "-q", "train", "--data-dir",
                             str(data_root / "ag_news_mini"), "--preset", "lesson-simple-titles", "--limit", "600",
                             "--epochs", "1", "--no-checkpoints", "--out", str(tmp_path / "model")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "first step: ['torch']" in result.stdout, result.stdout + result.stderr
    # the model it saved is the same kind of directory, and the scikit-learn estimator loads it
    import textrnn

    clf = textrnn.TextClassifier.from_pretrained(tmp_path / "model")
    assert isinstance(clf, textrnn.TextClassifier) and clf.get_params()["cell"] == "rnn"


def test_the_language_model_verbs_run_without_scikit_learn(tmp_path, data_root):
    # `lm train`, `lm evaluate` and `generate` use BaseLanguageModel and TextGenerator, not the scikit-learn
    # estimator LanguageModel, so they never import scikit-learn's base classes and SciPy (over half a second)
    program = ("import sys\nfrom textrnn.cli import main\nstatus = main(sys.argv[1:])\n"
               "print('imported:', sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules))\n"
               "sys.exit(status)\n")
    sst2, lm = str(data_root / "sst2"), tmp_path / "lm"
    verbs = [["lm", "train", "--dataset", "sst2", "--data-dir", sst2, "--limit", "400", "--layers", "1",
              "--hidden-size", "32", "--embedding-dim", "16", "--max-tokens", "2000", "--epochs", "1",
              "--no-checkpoints", "--out", str(lm)],
             ["lm", "evaluate", str(lm), "--dataset", "sst2", "--data-dir", sst2, "--limit", "50"],
             ["generate", str(lm), "--max-tokens", "5", "--seed", "1"]]
    for verb in verbs:
        result = subprocess.run([sys.executable, "-c", program, "-q", *verb], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert "imported: ['torch']" in result.stdout, (verb, result.stdout, result.stderr)
    # the directory they wrote is what the scikit-learn estimator reads, and it clones
    from sklearn.base import clone

    from textrnn.lm import LanguageModel

    model = LanguageModel.from_pretrained(lm)
    assert isinstance(model, LanguageModel) and model.get_params()["hidden_size"] == 32
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "model_")
