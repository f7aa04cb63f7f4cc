"""The CUDA path, on a machine with an NVIDIA GPU: the recipe trains there and its saved model predicts the same on
the CPU; masking stays exact under cuDNN; bf16 autocast; Ctrl-C and resume; a language model; explanations; ONNX
export; the command line; one NCCL process under torchrun. Skipped where PyTorch sees no GPU (CI has none): run
`pytest tests/test_cuda.py` on a machine with one (bench/README.md, "The CUDA path", has the last run)."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from textrnn import TextClassifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CI has none)")

ROWS = 3000  # of ag_news_mini's training texts: a model well above chance in seconds


@pytest.fixture(scope="module")
def data(ag_news_mini):
    train, test = ag_news_mini.train, ag_news_mini.test
    return ((train.texts()[:ROWS], ag_news_mini.labels_of(train)[:ROWS]),
            (test.texts()[:800], ag_news_mini.labels_of(test)[:800]))


@pytest.fixture(scope="module")
def recipe(data):
    """The default recipe (GloVe and its words where installed, adversarial training, the bag of bigrams), on the
    GPU, 3 epochs."""
    return TextClassifier(device="cuda", epochs=3, progress=False).fit(*data[0])


def test_the_recipe_trains_on_the_gpu_and_its_saved_model_predicts_the_same_on_the_cpu(recipe, data, tmp_path,
                                                                                      monkeypatch):
    assert all(p.device.type == "cuda" for p in recipe.model_.parameters())
    texts, labels = data[1]
    accuracy = recipe.score(texts, labels)
    assert accuracy > 0.8, accuracy  # chance is 0.25
    tf32 = recipe.predict_proba(texts)  # cuDNN's RNNs multiply in TF32 by default (a 10-bit mantissa)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    on_gpu = recipe.predict_proba(texts)
    directory = recipe.save_pretrained(tmp_path / "model")
    on_cpu = TextClassifier.from_pretrained(directory, device="cpu")
    assert next(on_cpu.model_.parameters()).device.type == "cpu"
    cpu_probabilities = on_cpu.predict_proba(texts)
    print(f"largest difference from the CPU's probabilities: fp32 {np.abs(cpu_probabilities - on_gpu).max():.2e}, "
          f"TF32 {np.abs(cpu_probabilities - tf32).max():.2e}")
    assert np.abs(cpu_probabilities - on_gpu).max() < 2e-5
    assert np.abs(cpu_probabilities - tf32).max() < 2e-3
    assert np.mean(cpu_probabilities.argmax(1) == tf32.argmax(1)) >= 0.995
    reloaded = TextClassifier.from_pretrained(directory, device="cuda")
    assert np.abs(reloaded.predict_proba(texts) - on_gpu).max() < 1e-6


CASES = [("lstm", True, 1), ("lstm", False, 2), ("gru", True, 2), ("rnn", True, 1), ("rnn", False, 1)]


@pytest.mark.parametrize("cell,bidirectional,layers", CASES)
def test_masked_logits_do_not_depend_on_padding_under_cudnn(cell, bidirectional, layers, monkeypatch):
    from textrnn.models import ModelConfig, RNNClassifier

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # TF32 rounds by batch shape, not by masking
    torch.manual_seed(0)
    config = ModelConfig(60, 4, cell, 12, 10, layers, bidirectional, 0.0, mask=True, pooling="concat", ngrams=2,
                         ngram_buckets=97)
    model = RNNClassifier(config).cuda().eval()
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 3, 7, 1, 9, 2, 6, 4, 8, 11, 10])
    tokens = torch.zeros(len(lengths), int(lengths.max()), dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        tokens[i, :n] = torch.randint(2, 60, (n,), generator=g)
    tokens = tokens.cuda()
    with torch.no_grad():
        batched = model(tokens, lengths)
        alone = torch.cat([model(tokens[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
        wider = model(torch.nn.functional.pad(tokens, (0, 5)), lengths)
    assert batched.device.type == "cuda"
    assert torch.allclose(batched, alone, atol=1e-5, rtol=0)
    assert torch.allclose(batched, wider, atol=1e-5, rtol=0)


def test_bf16_autocast_trains_on_the_gpu(data):
    clf = TextClassifier(device="cuda", precision="bf16", embeddings=None, epochs=2, progress=False).fit(*data[0])
    assert clf.score(*data[1]) > 0.75  # chance is 0.25
    assert all(p.dtype == torch.float32 for p in clf.model_.parameters())  # autocast: the weights stay fp32


def _train_cli(data_root, out, *extra):
    return [sys.executable, "-m", "textrnn", "-q", "train", "--data-dir", str(data_root / "ag_news_mini"),
            "--limit", "1000", "--cell", "gru", "--embedding-dim", "32", "--hidden-size", "16", "--epochs", "3",
            "--batch-size", "16", "--checkpoint-every", "10", "--ngram-buckets", "4096", "--device", "cuda",
            "--out", str(out), *extra]


def test_ctrl_c_on_the_gpu_checkpoints_and_resumes_to_the_weights_of_a_whole_run(data_root, tmp_path):
    from safetensors.torch import load_file

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    run = subprocess.run(_train_cli(data_root, whole), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    proc = subprocess.Popen(_train_cli(data_root, stopped), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((stopped / "checkpoints").glob("step-*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # stop after this step, checkpoint, validate, save
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    assert f"textrnn train --resume {stopped}" in stdout
    resumed = subprocess.run([sys.executable, "-m", "textrnn", "-q", "train", "--resume", str(stopped)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = load_file(whole / "model.safetensors"), load_file(stopped / "model.safetensors")
    assert a.keys() == b.keys()
    differences = {k: float((a[k] - b[k]).abs().max()) for k in a}
    # the GPU's sums (cuDNN, the embedding's scattered gradient) may round in another order from run to run
    assert max(differences.values()) < 1e-4, differences


def test_a_language_model_trains_generates_and_loads_on_the_cpu(data, tmp_path):
    from textrnn.lm import LanguageModel, TextGenerator

    texts = data[0][0]
    lm = LanguageModel(max_tokens=8000, hidden_size=128, layers=1, epochs=2, early_stopping=None, device="cuda",
                       progress=False).fit(texts[:2800], texts[2800:])
    perplexities = [h["val_perplexity"] for h in lm.history_]
    assert perplexities[1] < perplexities[0] < 2000, perplexities
    directory = lm.save_pretrained(tmp_path / "lm")
    on_cpu = LanguageModel.from_pretrained(directory, device="cpu")
    assert on_cpu.perplexity(texts[2800:]) == pytest.approx(lm.perplexity(texts[2800:]), rel=1e-4)
    generator = TextGenerator.from_pretrained(directory, device="cuda")
    samples = [generator.generate("the company said", max_tokens=30, seed=s) for s in range(5)]
    assert samples[1] == generator.generate("the company said", max_tokens=30, seed=1)
    # a sample may end early (the end-of-text token drawn), not all five
    assert sum(len(s.split()) - 3 for s in samples) > 30, samples


def test_integrated_gradients_on_the_gpu_add_up_to_the_logit_difference(recipe, data):
    pytest.importorskip("captum")
    net = recipe.model_

    def logit(ids: list[int], target: int, context: list[int]) -> float:  # the bag reads `context`, held fixed
        with torch.no_grad():
            tokens, lengths = torch.tensor([ids], device="cuda"), torch.tensor([len(ids)])
            bag = net.bag_of_ngrams(torch.tensor([context], device="cuda"), lengths)
            return float(net.forward_embedded(net.encoder.embed(tokens), lengths, bag)[0, target])

    for e in recipe.explain(data[1][0][:20]):
        target = recipe.classes_.index(e.label)
        ids = [recipe.vectorizer_.tokenizer.token_to_id(t.token) for t in e.tokens if t.read]
        difference = logit(ids, target, ids) - logit([0] * len(ids), target, ids)
        total = sum(t.score for t in e.tokens if t.read)
        assert abs(total - difference) <= 0.01 * abs(difference), (e.text, total, difference, e.steps)
        assert e.label == recipe.predict([e.text])[0]


def test_a_gpu_model_exports_to_onnx_with_pytorchs_probabilities(recipe, data, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # PyTorch's fp32 on the GPU, as the export's
    from textrnn.deploy.export import export_onnx
    from textrnn.deploy.runtime import OnnxClassifier

    export = export_onnx(recipe.save_pretrained(tmp_path / "model"), tmp_path / "onnx")
    texts = data[1][0][:200]
    assert np.abs(OnnxClassifier(export).predict_proba(texts) - recipe.predict_proba(texts)).max() < 2e-5


def test_textrnn_train_and_evaluate_on_the_gpu(data_root, tmp_path):
    out = tmp_path / "model"
    run = subprocess.run([sys.executable, "-m", "textrnn", "-q", "train", "--data-dir",
                          str(data_root / "ag_news_mini"), "--limit", "2000", "--epochs", "2", "--device", "cuda",
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    evaluated = subprocess.run([sys.executable, "-m", "textrnn", "evaluate", str(out), "--data-dir",
                                str(data_root / "ag_news_mini")], capture_output=True, text=True)  # "auto": the GPU
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "accuracy" in evaluated.stdout


def test_one_nccl_process_under_torchrun(data_root, tmp_path):
    out = tmp_path / "model"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1",
                          "-m", "textrnn", "-q", "train", "--data-dir", str(data_root / "ag_news_mini"), "--limit",
                          "2000", "--epochs", "1", "--device", "cuda", "--optimizer", "adam", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    clf = TextClassifier.from_pretrained(out, device="cpu")
    assert clf.run_record_["params"]["device"] in ("cuda", "auto")
