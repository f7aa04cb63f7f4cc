"""The linear n-gram part (NBSVM over hashed 1-3-grams of the whole text's words and punctuation marks): accurate on
its own, averaged with the network at the weight of lowest validation log-loss, fitted again with the validation
texts once kept, carried through save, load, ONNX export and the CLI, and read by parts saved before its tokens
changed."""

import json

import numpy as np
import pytest

from textrnn import TextClassifier, TextrnnError, load_dataset
from textrnn.models import ngram_linear
from textrnn.models.ngram_linear import MIN_VALIDATION, NgramLinearModel, average, choose_weight


@pytest.fixture(scope="module")
def sst2(data_root):
    return load_dataset("sst2", data_root / "sst2")


def _accuracy(log_proba, y) -> float:
    return float(np.mean(log_proba.argmax(1) == np.asarray(y)))


def test_the_part_alone_scores_as_nbsvm_does(sst2, ag_news_mini):
    def ids(split):  # sst2's labels are names; the part takes class ids
        return np.asarray([["negative", "positive"].index(name) for name in sst2.labels_of(split)])

    part = NgramLinearModel.fit(sst2.train.texts(), ids(sst2.train), 2)
    log_proba = part.log_proba(sst2.validation.texts())
    assert log_proba.shape == (len(sst2.validation.texts()), 2) and part.weight.shape == (1, len(part.columns))
    assert np.allclose(np.exp(log_proba).sum(1), 1.0, atol=1e-5)
    assert _accuracy(log_proba, ids(sst2.validation)) > 0.78  # measured 0.7970 (0.8005 reading words, "!" and "?" only)
    # one class against the rest, a score each, for four topics
    news = NgramLinearModel.fit(ag_news_mini.train.texts(), np.asarray(ag_news_mini.train.labels), 4)
    assert news.weight.shape == (4, len(news.columns))
    assert _accuracy(news.log_proba(ag_news_mini.test.texts()), ag_news_mini.test.labels) > 0.85  # measured 0.876


def _log_loss(log_proba, y) -> float:
    return float(-np.mean(log_proba[np.arange(len(y)), y]))


def _tempered_log_loss(log_proba, y) -> float:
    """The log-loss of the probabilities at the best temperature, found by a search over a fine grid."""
    from scipy.special import log_softmax

    return min(_log_loss(log_softmax(log_proba / t, axis=1), y) for t in np.exp(np.linspace(-3, 3, 6001)))


def test_the_weight_is_the_one_of_lowest_validation_log_loss():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    truth = np.eye(2)[y]
    # a network right on 70 % of the texts, a linear part right on 90 %, their errors independent
    network = np.log(np.where(rng.random(400)[:, None] < 0.7, 0.2 + 0.6 * truth, 0.8 - 0.6 * truth))
    strong = np.log(np.where(rng.random(400)[:, None] < 0.9, 0.3 + 0.4 * truth, 0.7 - 0.4 * truth))
    weight, report = choose_weight(network, strong, y)
    losses = {w: _tempered_log_loss(average(network, strong, w), y) for w in np.round(np.linspace(0, 1, 11), 1)}
    assert weight == min(losses, key=losses.get) and weight > 0.5
    assert report["averaged_log_loss"] == pytest.approx(losses[weight], abs=1e-4)
    assert report["network_log_loss"] == pytest.approx(losses[0.0], abs=1e-4) and losses[weight] < losses[0.0]
    assert report["averaged_accuracy_cross_fitted"] > report["network_accuracy"] == pytest.approx(0.7, abs=0.05)
    # a part whose probabilities are noise: the network alone, although averaging with noise softens the network's
    # overconfident errors (its probability 0.8 is right 70 % of the time) and so lowers its untempered log-loss
    noise = np.log(rng.dirichlet([1, 1], 400))
    weight, report = choose_weight(network, noise, y)
    assert weight == 0.0 and report["averaged_log_loss"] == pytest.approx(report["network_log_loss"])
    assert _log_loss(average(network, noise, 0.2), y) < _log_loss(network, y)
    # too few texts to choose on
    assert choose_weight(network[: MIN_VALIDATION - 1], strong[: MIN_VALIDATION - 1], y[: MIN_VALIDATION - 1])[0] == 0


def test_average_is_a_normalised_weighted_geometric_mean():
    network, linear = np.log([[0.9, 0.1], [0.4, 0.6]]), np.log([[0.2, 0.8], [0.1, 0.9]])
    got = np.exp(average(network, linear, 0.25))
    expected = np.array([[0.9, 0.1], [0.4, 0.6]]) ** 0.75 * np.array([[0.2, 0.8], [0.1, 0.9]]) ** 0.25
    assert np.allclose(got, expected / expected.sum(1, keepdims=True))
    assert np.allclose(np.exp(average(network, linear, 1.0)), [[0.2, 0.8], [0.1, 0.9]])


@pytest.fixture(scope="module")
def sst2_with_part(sst2):
    """A small network on sst2, one epoch, with the part at a fixed weight (the fit takes about 10 s)."""
    clf = TextClassifier(embedding_dim=16, hidden_size=8, embeddings=None, ngrams=0, epochs=1, early_stopping=None,
                         adversarial=0.0, linear_part=0.6, progress=False)
    return clf.fit(sst2.train.texts(), sst2.labels_of(sst2.train))


def test_predictions_average_the_network_and_the_part(sst2_with_part, sst2):
    clf, texts = sst2_with_part, sst2.test.texts()
    assert clf.linear_weight_ == 0.6 and clf.run_record_["linear_part"]["weight"] == 0.6
    network = np.log(_network_only(clf).predict_proba(texts))
    expected = np.exp(average(network, clf.linear_part_.log_proba(texts), 0.6))
    assert np.allclose(clf.predict_proba(texts), expected, atol=1e-5)
    assert clf.predict(texts) == [clf.classes_[i] for i in expected.argmax(1)]
    labels = sst2.labels_of(sst2.test)
    assert clf.score(texts, labels) == pytest.approx(np.mean(np.asarray(clf.predict(texts)) == np.asarray(labels)))
    # the average is the better model here: a one-epoch 8-unit network is far weaker than NBSVM on sst2
    assert clf.score(texts, labels) > _network_only(clf).score(texts, labels)


def _network_only(clf):
    import copy

    alone = copy.copy(clf)
    alone.linear_part_, alone.linear_weight_ = None, 0.0
    return alone


def test_save_load_and_onnx_export_carry_the_part(sst2_with_part, sst2, tmp_path):
    from textrnn.deploy.export import export_onnx
    from textrnn.deploy.runtime import OnnxClassifier

    clf, texts = sst2_with_part, sst2.test.texts()[:300]
    out = clf.save_pretrained(tmp_path / "model")
    config = json.loads((out / "config.json").read_text())
    assert config["linear_part"]["weight"] == 0.6 and (out / "linear_part.safetensors").is_file()
    loaded = TextClassifier.from_pretrained(out)
    assert np.array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
    onnx = OnnxClassifier(export_onnx(out, tmp_path / "onnx"))
    assert np.abs(onnx.predict_proba(texts) - clf.predict_proba(texts)).max() < 1e-4
    # a config that lies about the part is a clear error, not a silent network-only model
    config["linear_part"]["weight"] = 2
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(TextrnnError, match="linear_part.weight"):
        TextClassifier.from_pretrained(out)
    config["linear_part"]["weight"] = 0.6
    config["linear_part"]["buckets"] = 1024
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(TextrnnError, match="reads texts as"):
        TextClassifier.from_pretrained(out)


def test_a_part_saved_with_the_earlier_tokens_still_reads_texts_as_it_was_fitted(sst2_with_part, sst2, tmp_path,
                                                                                 monkeypatch):
    """Parts fitted until 6 December 2026 read words and "!" and "?" only; their model directories load, and the
    part reads texts with the tokens it was fitted on, not today's."""
    import copy

    earlier = ngram_linear.READABLE_TOKEN_PATTERNS[1]
    texts, ids = sst2.train.texts(), np.asarray([["negative", "positive"].index(y) for y in sst2.labels_of(sst2.train)])
    monkeypatch.setattr(ngram_linear, "TOKEN_PATTERN", earlier)
    part = NgramLinearModel.fit(texts, ids, 2)
    monkeypatch.undo()
    assert part.token_pattern == earlier != ngram_linear.TOKEN_PATTERN
    clf = copy.copy(sst2_with_part)
    clf.linear_part_ = part
    out = clf.save_pretrained(tmp_path / "model")
    assert json.loads((out / "config.json").read_text())["linear_part"]["token_pattern"] == earlier
    loaded = TextClassifier.from_pretrained(out)
    test = sst2.test.texts()
    assert loaded.linear_part_.token_pattern == earlier
    assert np.array_equal(loaded.predict_proba(test), clf.predict_proba(test))
    # which tokens are read matters: the same weights read with today's tokens give other scores
    today = NgramLinearModel(part.columns, part.weight, part.bias, 2)
    assert not np.allclose(today.scores(test), part.scores(test))
    # a pattern this textrnn does not know is refused, not read some other way
    config = json.loads((out / "config.json").read_text())
    config["linear_part"]["token_pattern"] = r"\S+"
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(TextrnnError, match="reads texts as"):
        TextClassifier.from_pretrained(out)


def test_auto_chooses_on_the_validation_texts(sst2):
    clf = TextClassifier(embedding_dim=16, hidden_size=8, embeddings=None, ngrams=0, epochs=1, adversarial=0.0,
                         progress=False)
    clf.fit(sst2.train.texts(), sst2.labels_of(sst2.train),
            validation_data=(sst2.validation.texts(), sst2.labels_of(sst2.validation)))
    report = clf.run_record_["linear_part"]
    assert report["network_accuracy"] == pytest.approx(clf.history_[-1].val_accuracy)
    # a one-epoch 8-unit network (0.763 on validation) gains from NBSVM's 0.800: measured log-loss 0.495 -> 0.441 at
    # weight 0.7, cross-fitted accuracy 0.798
    assert report["averaged_log_loss"] < report["network_log_loss"]
    assert report["averaged_accuracy_cross_fitted"] > report["network_accuracy"]
    assert clf.linear_weight_ == report["weight"] > 0 and clf.linear_part_ is not None
    # the weight was chosen with a part fitted on the training texts alone; the part kept is fitted again on the
    # training and validation texts together, and the run record keeps the held-out figures
    ids = lambda split: np.array([list(clf.classes_).index(label) for label in sst2.labels_of(split)])  # noqa: E731
    alone = NgramLinearModel.fit(sst2.train.texts(), ids(sst2.train), 2)
    held_out = np.mean(alone.log_proba(sst2.validation.texts()).argmax(1) == ids(sst2.validation))
    assert report["linear_accuracy"] == pytest.approx(held_out)
    both = NgramLinearModel.fit(sst2.train.texts() + sst2.validation.texts(),
                                np.concatenate([ids(sst2.train), ids(sst2.validation)]), 2)
    assert report["fitted_on"] == "training and validation texts" and len(both.columns) > len(alone.columns)
    assert np.array_equal(clf.linear_part_.columns, both.columns) and np.allclose(clf.linear_part_.weight, both.weight)


def test_off_and_the_lesson_presets_train_the_network_alone(ag_news_mini, tmp_path):
    from textrnn.lesson.presets import PRESETS

    assert all(p.params["linear_part"] is None for p in PRESETS.values())
    train = ag_news_mini.train.take(300)
    clf = TextClassifier(embedding_dim=16, hidden_size=8, embeddings=None, ngrams=0, epochs=1, linear_part=None,
                         progress=False).fit(train.texts(), train.labels, classes=ag_news_mini.classes)
    assert clf.linear_part_ is None and "linear_part" not in clf.run_record_
    assert not (clf.save_pretrained(tmp_path / "m") / "linear_part.safetensors").exists()
    with pytest.raises(TextrnnError, match="linear_part"):
        TextClassifier(linear_part=1.5).fit(train.texts(), train.labels)


def test_cli_flag_reads_auto_off_and_a_weight():
    import argparse

    from textrnn.cli.flags import linear_part_value

    assert [linear_part_value(v) for v in ("auto", "off", "0.3", "1")] == ["auto", 0.0, 0.3, 1.0]
    for bad in ("2", "none", "-0.1"):
        with pytest.raises(argparse.ArgumentTypeError):
            linear_part_value(bad)


def test_cli_train_keeps_the_part_as_told_and_says_so(data_root, tmp_path, capsys):
    from textrnn.cli import main

    args = ["-q", "train", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"), "--limit", "600", "--epochs",
            "1", "--embeddings", "none", "--embedding-dim", "16", "--hidden-size", "8", "--ngrams", "0"]
    assert main([*args, "--linear-part", "0.4", "--out", str(tmp_path / "kept")]) == 0
    assert "and a linear n-gram part at weight 0.4" in capsys.readouterr().out
    assert json.loads((tmp_path / "kept" / "config.json").read_text())["linear_part"]["weight"] == 0.4
    assert main([*args, "--linear-part", "off", "--out", str(tmp_path / "off")]) == 0
    assert "linear n-gram part" not in capsys.readouterr().out
    assert not (tmp_path / "off" / "linear_part.safetensors").exists()
