"""Token attributions: integrated gradients' completeness, occlusion's definition, truncation, and the command."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("captum")

from textrnn import TextClassifier  # noqa: E402
from textrnn.cli import main  # noqa: E402
from textrnn.errors import TextrnnError  # noqa: E402


@pytest.fixture(scope="module")
def clf(served_model_dir):
    return TextClassifier.from_pretrained(served_model_dir)


@pytest.fixture(scope="module")
def gru(ag_news_mini):
    """A stacked GRU with max pooling, a length limit and no bag of n-grams (the `clf` fixture, the recipe's
    model, reads one): another path through the encoder, the pooling and the head."""
    train = ag_news_mini.train
    model = TextClassifier(cell="gru", hidden_size=16, layers=2, bidirectional=True, pooling="max", max_len=20,
                           ngrams=0, epochs=1, progress=False)
    return model.fit(train.texts()[:2000], ag_news_mini.labels_of(train)[:2000])


def logit(clf, ids: list[int], target: int, context: list[int] | None = None) -> float:
    """The target logit for token ids, computed here from the network itself; a model with a bag of n-grams reads
    the bag of `context` (default: the same ids), which explanations hold fixed."""
    net = clf.model_
    with torch.no_grad():
        tokens, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
        bag = net.bag_of_ngrams(torch.tensor([context or ids]), lengths)
        return float(net.forward_embedded(net.encoder.embed(tokens), lengths, bag)[0, target])


@pytest.mark.parametrize("which", ["clf", "gru"])
def test_integrated_gradients_add_up_to_the_logit_difference(which, request, ag_news_mini):
    model = request.getfixturevalue(which)
    texts = ag_news_mini.test.texts()[:30]
    for e in model.explain(texts):
        target = model.classes_.index(e.label)
        ids = [model.vectorizer_.tokenizer.token_to_id(t.token) for t in e.tokens if t.read]
        # from all padding (beside the text's own bag of n-grams, if the model reads one)
        difference = logit(model, ids, target) - logit(model, [0] * len(ids), target, context=ids)
        total = sum(t.score for t in e.tokens if t.read)
        assert abs(total - difference) <= 0.01 * abs(difference), (e.text, total, difference, e.steps)
        assert e.label == model.predict([e.text])[0]
        assert np.isclose(e.probabilities[e.label], model.predict_proba([e.text])[0][target], atol=1e-6)


def test_truncated_tokens_are_marked_unread(gru, ag_news_mini):
    long_text = max(ag_news_mini.test.texts()[:200], key=len)
    e = gru.explain([long_text])[0]
    read = [t for t in e.tokens if t.read]
    assert len(read) == 20 and len(e.tokens) > 20
    assert all(t.score is None for t in e.tokens if not t.read)
    assert e.tokens[:20] == read  # max_len keeps the head


def test_occlusion_scores_are_the_logit_drop_without_the_token(clf):
    text = "Oil prices jumped as the stock market fell"
    e = clf.explain([text], method="occlusion")[0]
    target = clf.classes_.index(e.label)
    tokens = torch.tensor([[clf.vectorizer_.tokenizer.token_to_id(t.token) for t in e.tokens]])
    lengths = torch.tensor([tokens.shape[1]])
    with torch.no_grad():
        embedded = clf.model_.encoder.embed(tokens)
        bag = clf.model_.bag_of_ngrams(tokens, lengths)  # None for a model without n-grams
        full = float(clf.model_.forward_embedded(embedded, lengths, bag)[0, target])
        for i, token in enumerate(e.tokens):
            occluded = embedded.clone()
            occluded[0, i] = clf.model_.encoder.embedding.weight[0]  # padding's vector in its place
            drop = full - float(clf.model_.forward_embedded(occluded, lengths, bag)[0, target])
            assert abs(token.score - drop) < 1e-4, (token.token, token.score, drop)


def test_explaining_another_class_and_bad_arguments(clf):
    text = "The striker scored twice"
    other = next(c for c in clf.classes_ if c != clf.predict([text])[0])
    e = clf.explain([text], target=other)[0]
    assert e.label == other and e.probabilities[other] < 0.5
    empty = clf.explain(["?!"])[0]  # nothing the tokenizer keeps
    assert empty.tokens == [] and empty.label == clf.predict(["?!"])[0]
    with pytest.raises(TextrnnError, match="unknown class"):
        clf.explain([text], target="Weather")
    with pytest.raises(TextrnnError, match="unknown explanation method"):
        clf.explain([text], method="shap")
    with pytest.raises(TextrnnError, match="steps"):
        clf.explain([text], steps=1)
    with pytest.raises(TextrnnError, match="not trained"):
        TextClassifier().explain([text])


def test_textrnn_explain_prints_json_plain_colours_and_html(served_model_dir, tmp_path, capsys, clf):
    text = "Stocks fell as oil hit a record"
    assert main(["explain", str(served_model_dir), text, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["label"] == clf.predict([text])[0] and [t["token"] for t in record["tokens"]] == text.lower().split()
    assert main(["explain", str(served_model_dir), text, "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "Stocks[" in out and "\x1b[" not in out and "completeness gap" in out
    page = tmp_path / "why.html"
    assert main(["explain", str(served_model_dir), text, "--color", "always", "--method", "occlusion",
                 "--html", str(page)]) == 0
    assert "\x1b[38;2;0;0;0;48;2;" in capsys.readouterr().out
    html = page.read_text()
    assert html.count('class="tok"') == len(text.split()) and "<meter" in html
    assert main(["explain", str(served_model_dir), text, "--target", "Nope"]) == 2
    assert "unknown class 'Nope'" in capsys.readouterr().err
