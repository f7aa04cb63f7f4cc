"""TextClassifier is a scikit-learn estimator: clone, cross_val_score and GridSearchCV work on real text."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from textrnn import TextClassifier, TextrnnError, load_dataset

# every epoch trained at a constant rate, as these tests' accuracy bars were measured
SMALL = dict(cell="gru", embedding_dim=16, hidden_size=8, max_tokens=3000, epochs=2, batch_size=32, lr=3e-3,
             lr_schedule="constant", early_stopping=None, progress=False)


@pytest.fixture(scope="module")
def sst2_slice(data_root):
    ds = load_dataset("sst2", data_root / "sst2")
    return ds.train.texts()[:900], np.asarray(ds.train.labels[:900])


def test_params_come_from_init_and_clone_copies_them_unfitted(sst2_slice):
    clf = TextClassifier(**SMALL, checkpoint_dir=None)
    assert clf.get_params()["hidden_size"] == 8 and clf.get_params()["pooling"] == "concat"
    clf.set_params(hidden_size=12, dropout=0.1)
    assert clf.hidden_size == 12 and clf.dropout == 0.1
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    assert repr(twin).startswith("TextClassifier(cell='gru'")
    texts, labels = sst2_slice
    clf.fit(texts[:300], labels[:300])
    assert hasattr(clf, "model_") and not hasattr(clone(clf), "model_")


def test_a_failed_fit_leaves_no_learned_state(sst2_slice):
    texts, labels = sst2_slice
    # early stopping needs validation data: fit is given none and may not hold any out
    clf = TextClassifier(**dict(SMALL, early_stopping=1, validation_fraction=None))
    with pytest.raises(TextrnnError, match="validation"):
        clf.fit(texts[:200], labels[:200])
    assert not [name for name in vars(clf) if name.endswith("_") and not name.startswith("_")]


def test_fit_leaves_torchs_global_rng_alone(sst2_slice):
    texts, labels = sst2_slice
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    TextClassifier(**dict(SMALL, epochs=1, dropout=0.2)).fit(texts[:200], labels[:200])
    assert torch.equal(torch.rand(3), expected)


def test_cross_val_score_on_sst2(sst2_slice):
    texts, labels = sst2_slice
    scores = cross_val_score(TextClassifier(**SMALL), texts, labels, cv=3)
    assert scores.shape == (3,)
    # measured: 0.60-0.70 per fold on 900 sentences after 2 epochs; chance is about 0.5
    assert scores.mean() > 0.56


def test_grid_search_on_sst2(sst2_slice):
    texts, labels = sst2_slice
    search = GridSearchCV(TextClassifier(**SMALL), {"hidden_size": [4, 8], "pooling": ["last", "max"]}, cv=2)
    search.fit(texts, labels)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_ in search.cv_results_["params"]
    best = search.best_estimator_
    assert best.hidden_size == search.best_params_["hidden_size"] and best.classes_ == ["negative", "positive"]
    assert best.score(texts, labels) > 0.6


def test_weighted_score_is_scikit_learns_weighted_accuracy(sst2_slice):
    from sklearn.metrics import accuracy_score

    texts, labels = sst2_slice
    clf = TextClassifier(**SMALL).fit(texts[:600], labels[:600])
    held_texts, held_labels = texts[600:], labels[600:]
    predicted = clf.predict(held_texts)
    weights = np.random.default_rng(0).uniform(0.0, 3.0, len(held_texts))
    weighted = clf.score(held_texts, held_labels, sample_weight=weights)
    assert weighted == pytest.approx(accuracy_score(list(held_labels), predicted, sample_weight=weights), abs=1e-12)
    assert weighted != pytest.approx(clf.score(held_texts, held_labels), abs=1e-6)  # the weights do count
    assert clf.score(held_texts, held_labels, sample_weight=np.ones(len(held_texts))) == pytest.approx(
        clf.score(held_texts, held_labels), abs=1e-12)
