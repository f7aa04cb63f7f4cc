"""textrnn's default recipe: what `TextClassifier()` and `textrnn train --train FILE` do with no other settings
(GloVe, 400 tokens, lr 3e-3 with a linear schedule, concat pooling, embedding dropout, adversarial training, early
stopping on validation held out of the training rows),
while the lesson's presets keep the lesson's settings."""

import json

import pytest

from textrnn import TextClassifier, load_dataset
from textrnn.cli import build_parser, main
from textrnn.cli.flags import classifier_params
from textrnn.cli.train import recipe_params
from textrnn.errors import TextrnnError
from textrnn.lesson.presets import PRESETS


@pytest.fixture(scope="module")
def sst2(data_root):
    return load_dataset("sst2", data_root / "sst2")


def test_fit_without_validation_data_holds_out_a_stratified_tenth_and_stops_early(sst2):
    texts, labels = sst2.train.texts()[:1200], list(sst2.train.labels[:1200])
    clf = TextClassifier(hidden_size=16, epochs=6, progress=False).fit(texts, labels)
    data = clf.run_record_["data"]
    assert data["train"]["rows"] == 1080 and data["validation"]["rows"] == 120
    assert data["validation"]["held_out_of_training"] == 0.1
    assert all(h.val_accuracy is not None for h in clf.history_)
    # GloVe by default: the 50-d vectors, most of the vocabulary covered
    assert clf.run_record_["embeddings"] == "glove-6b-50d" and clf.model_.config.embedding_dim == 50
    assert clf.embedding_coverage_["word_coverage"] > 0.8
    # the same seed holds out the same rows: a second fit reads the same data
    again = TextClassifier(hidden_size=16, epochs=1, progress=False).fit(texts, labels)
    assert again.run_record_["data"]["validation"]["sha256"] == data["validation"]["sha256"]


def test_too_few_texts_to_hold_out_trains_every_epoch_without_early_stopping(caplog):
    with caplog.at_level("WARNING", logger="textrnn"):
        clf = TextClassifier(hidden_size=4, embedding_dim=8, epochs=3, progress=False).fit(
            ["good film", "bad film", "a great film"], ["pos", "neg", "pos"])
    assert len(clf.history_) == 3 and clf.history_[-1].val_accuracy is None
    assert "without early stopping" in caplog.text


def test_the_presets_keep_the_lessons_settings():
    args = build_parser().parse_args(["train", "--preset", "lesson-bilstm"])
    params, _ = classifier_params(args)
    clf = TextClassifier(**params)
    assert (clf.epochs, clf.lr, clf.lr_schedule, clf.early_stopping, clf.max_len, clf.embeddings, clf.clip_norm) == \
        (1, 1e-3, "constant", None, None, None, None)
    assert (clf.pooling, clf.embedding_dropout, clf.adversarial) == ("last", 0.0, 0.0)  # the lesson's Dense(last)
    assert clf.build(4).config.embedding_dim == 128  # the lesson's Embedding(20000, 128)
    assert clf.ngrams == 0 and clf.build(4).embedding.num_embeddings == 20000  # no bag of n-grams, no extra rows
    assert all(p.params["embeddings"] is None for p in PRESETS.values())


def test_train_with_only_a_training_file_uses_the_recipe(data_root, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["-q", "train", "--train", str(data_root / "sst2" / "train.csv.gz"), "--limit", "2000",
                 "--hidden-size", "16", "--no-checkpoints", "--out", str(out)]) == 0
    assert "validating on 692 (held out of the training rows: 10%, stratified)" in capsys.readouterr().err  # of 6,920
    record = json.loads((out / "trainer_state.json").read_text())
    params = record["run"]["params"]
    assert (params["lr"], params["lr_schedule"], params["early_stopping"], params["max_len"]) == \
        (3e-3, "linear", 2, 400)
    assert (params["pooling"], params["embedding_dropout"], params["adversarial"]) == ("concat", 0.25, "auto")
    assert (params["ngrams"], params["ngram_buckets"], params["ngram_dropout"]) == ("auto", 2**18, 0.75)
    assert json.loads((out / "config.json").read_text())["model"]["ngrams"] == 2
    assert record["run"]["adversarial"] == 1.0  # "auto" on GloVe: the recipe's distance
    assert record["run"]["embeddings"] == "glove-6b-50d"
    assert record["run"]["metadata"]["source"]["val_split"] == 0.1
    kept = max(record["history"], key=lambda h: h["val_accuracy"])
    assert kept["val_accuracy"] > 0.7  # measured: 0.75-0.78 on these 2,000 sentences


def test_quick_shortens_the_recipe_and_explicit_flags_still_win():
    parse = build_parser().parse_args
    params, _ = recipe_params(parse(["train", "--train", "x.csv", "--quick"]))
    assert params == {"epochs": 3, "max_len": 200}
    params, _ = recipe_params(parse(["train", "--train", "x.csv", "--quick", "--epochs", "5", "--max-len", "0"]))
    assert params == {"epochs": 5, "max_len": None}
    assert recipe_params(parse(["train", "--train", "x.csv"]))[0] == {}
    with pytest.raises(TextrnnError, match="--quick"):
        recipe_params(parse(["train", "--preset", "lesson-lstm", "--quick"]))
