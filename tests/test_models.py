import itertools

import pytest
import torch

from textrnn import TextClassifier
from textrnn.errors import TextrnnError
from textrnn.models import ModelConfig, RNNClassifier, count_parameters, summary
from textrnn.lesson.presets import PRESETS


def _batch(lengths, vocab=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    tokens = torch.zeros(len(lengths), int(lengths.max()), dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        tokens[i, :n] = torch.randint(2, vocab, (n,), generator=g)
    return tokens, lengths


CASES = list(itertools.product(["rnn", "lstm", "gru"], [False, True], [1, 2]))
LENGTHS = {"few lengths": [5, 3, 7, 3, 5, 7, 3], "many lengths": [5, 3, 7, 1, 9, 2, 6, 4, 8, 11, 10]}


@pytest.mark.parametrize("cell,bidirectional,layers", CASES)
@pytest.mark.parametrize("path", sorted(LENGTHS))
def test_masked_logits_do_not_depend_on_padding(cell, bidirectional, layers, path):
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(60, 4, cell, 12, 10, layers, bidirectional, 0.0, mask=True)).eval()
    tokens, lengths = _batch(LENGTHS[path])
    with torch.no_grad():
        batched = model(tokens, lengths)
        alone = torch.cat([model(tokens[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
    assert torch.allclose(batched, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell,bidirectional,layers", CASES)
def test_unmasked_logits_see_the_padding(cell, bidirectional, layers):
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(60, 4, cell, 12, 10, layers, bidirectional, 0.0, mask=False)).eval()
    tokens, lengths = _batch([5, 3, 7, 1])
    with torch.no_grad():
        batched = model(tokens, lengths)
        alone = torch.cat([model(tokens[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
    # the longest row has no padding, so it agrees; every shorter row read padding and differs
    assert torch.allclose(batched[2], alone[2], atol=1e-6)
    for i in (0, 1, 3):
        assert (batched[i] - alone[i]).abs().max() > 1e-4


def test_empty_text_gives_the_zero_state_like_a_fully_masked_keras_rnn():
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(60, 4, "lstm", 12, 10, 1, True, 0.0, mask=True)).eval()
    tokens, lengths = _batch([4, 0, 2])
    with torch.no_grad():
        logits = model(tokens, lengths)
    assert torch.allclose(logits[1], model.head.bias)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts_match_the_lesson(name):
    preset = PRESETS[name]
    model = TextClassifier(**preset.params).build(num_classes=4)
    counts = count_parameters(model)
    assert counts["keras"] == preset.keras_params
    # PyTorch's second bias vector per gate: gates * hidden per layer and direction
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[preset.params["cell"]]
    directions = 2 if preset.params["bidirectional"] else 1
    extra = gates * preset.params["hidden_size"] * directions * preset.params["layers"]
    assert counts["pytorch"] == preset.keras_params + extra
    text = summary(model, name)
    assert f"Total params: {counts['pytorch']:,}" in text
    assert f"Keras count:  {preset.keras_params:,}" in text


def test_gru_counts_agree_with_keras_reset_after():
    model = RNNClassifier(ModelConfig(100, 4, "gru", 8, 5, 1, False))
    # Keras GRU(5, reset_after=True) on 8 inputs: 3*(8*5 + 5*5) + 2*3*5 = 225
    assert sum(p.numel() for p in model.encoder.rnn.parameters()) == 225
    assert count_parameters(model)["keras"] == count_parameters(model)["pytorch"]


def test_keras_initialisation():
    model = RNNClassifier(ModelConfig(1000, 4, "lstm", 16, 8, 1, False))
    assert model.embedding.weight.abs().max() <= 0.05
    bias = model.encoder.rnn.bias_ih_l0.detach()
    assert model.encoder.rnn.bias_hh_l0.abs().sum() == 0
    assert torch.equal(bias[8:16], torch.ones(8)) and bias[:8].abs().sum() == 0
    w = model.encoder.rnn.weight_hh_l0.detach()  # (4H, H) with orthonormal columns
    assert torch.allclose(w.T @ w, torch.eye(8), atol=1e-5)


@pytest.mark.parametrize("pooling", ["max", "mean", "concat"])
@pytest.mark.parametrize("cell,bidirectional,layers", [("lstm", True, 2), ("gru", False, 1), ("rnn", True, 1)])
def test_pooling_over_steps_keeps_masking_exact(pooling, cell, bidirectional, layers):
    torch.manual_seed(0)
    config = ModelConfig(60, 4, cell, 12, 10, layers, bidirectional, 0.0, mask=True, pooling=pooling)
    model = RNNClassifier(config).eval()
    tokens, lengths = _batch(LENGTHS["many lengths"])
    with torch.no_grad():
        batched = model(tokens, lengths)
        alone = torch.cat([model(tokens[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
        steps = model.encoder(tokens, lengths, steps=True)
    assert torch.allclose(batched, alone, atol=1e-5, rtol=0)
    assert model.head.in_features == (3 if pooling == "concat" else 1) * config.state_size
    assert steps.steps.shape == (len(lengths), int(lengths.max()), config.state_size)
    # the step outputs are in token order: the forward half of the last real step is the final state's
    n = int(lengths[0])
    assert torch.allclose(steps.steps[0, n - 1, : config.hidden_size], steps.final[0, : config.hidden_size])


def test_the_encoder_gives_each_steps_state_for_an_empty_text_too():
    model = RNNClassifier(ModelConfig(60, 4, "lstm", 12, 10, 1, True, 0.0, mask=True, pooling="concat")).eval()
    tokens, lengths = _batch([4, 0, 2])
    with torch.no_grad():
        logits = model(tokens, lengths)
    assert torch.allclose(logits[1], model.head.bias)  # nothing read: every pooled vector is zero


@pytest.mark.parametrize("cell,bidirectional,layers", CASES)
@pytest.mark.parametrize("pooling", ["last", "concat"])
def test_weight_shapes_are_known_without_building_the_network(cell, bidirectional, layers, pooling):
    config = ModelConfig(60, 5, cell, 12, 10, layers, bidirectional, 0.0, mask=True, pooling=pooling)
    built = {k: tuple(v.shape) for k, v in RNNClassifier(config).state_dict().items()}
    assert RNNClassifier.weight_shapes(config) == built


@pytest.mark.parametrize("steps", [1, 2, 37])
def test_simple_rnn_gives_nn_rnns_outputs_and_gradients(steps):
    # the written-out backward pass against nn.RNN's autograd, in float64 so that a wrong term cannot hide
    # in rounding; two stacked layers, so the gradient reaching the first layer's outputs is checked too
    from textrnn.models.simple_rnn import SimpleRNN

    torch.manual_seed(0)
    ours = SimpleRNN(10, 6, num_layers=2).double()
    theirs = torch.nn.RNN(10, 6, num_layers=2, nonlinearity="tanh", batch_first=True).double()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(5, steps, 10, dtype=torch.float64)
    assert not ours.uses_kernel(x)  # float64: the same steps as PyTorch operators (the kernel is float32's)
    results = []
    for rnn in (ours, theirs):
        inputs = x.clone().requires_grad_()
        out, final = rnn(inputs)
        (out.sin().sum() + final.cos().sum()).backward()  # every step's output and the final state get gradient
        results.append((out, final, inputs.grad, [p.grad for p in rnn.parameters()]))
    (out_a, final_a, grad_a, params_a), (out_b, final_b, grad_b, params_b) = results
    assert torch.allclose(out_a, out_b, atol=1e-12) and torch.allclose(final_a, final_b, atol=1e-12)
    assert torch.allclose(grad_a, grad_b, atol=1e-12)
    for name, a, b in zip([n for n, _ in ours.named_parameters()], params_a, params_b):
        assert torch.allclose(a, b, atol=1e-12), name


@pytest.mark.parametrize("batch,steps,hidden", [(5, 1, 6), (5, 2, 16), (7, 37, 33), (64, 37, 16)])
def test_the_compiled_simple_rnn_gives_nn_rnns_outputs_and_gradients(batch, steps, hidden):
    # float32, the kernel's only dtype: to float rounding (its tanh is a polynomial); the last case is large
    # enough for the kernel to split its rows between threads
    from textrnn.models.simple_rnn import SimpleRNN, kernel

    assert kernel() is not None, "no C++ compiler (g++)? .ci/run installs one"
    torch.manual_seed(0)
    ours = SimpleRNN(10, hidden, num_layers=2)
    theirs = torch.nn.RNN(10, hidden, num_layers=2, nonlinearity="tanh", batch_first=True)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(batch, steps, 10)
    assert ours.uses_kernel(x)
    results = []
    for rnn in (ours, theirs):
        inputs = x.clone().requires_grad_()
        out, final = rnn(inputs)
        (out.sin().sum() + final.cos().sum()).backward()
        results.append([out, final, inputs.grad, *(p.grad for p in rnn.parameters())])
    names = ["out", "final", "input", *(n for n, _ in ours.named_parameters())]
    for name, a, b in zip(names, *results):
        assert (a - b).abs().max() < 2e-5 * max(1.0, b.abs().max().item()), name


def test_the_compiled_simple_rnn_does_not_depend_on_the_thread_count():
    # the kernel alone (PyTorch's matmuls around it may round by the thread count): the same input, the same bits
    from textrnn.models.simple_rnn import kernel

    torch.manual_seed(0)
    batch, steps, hidden = 64, 40, 16  # enough work for the kernel to use every thread it is given
    xw, grad_out = torch.randn(batch, steps, hidden), torch.randn(batch, steps, hidden)
    w = torch.randn(hidden, hidden) / 4
    w_t = w.t().contiguous()
    results = []
    for threads in (1, 2, 3):
        out, before, pre = xw.clone(), torch.empty(batch, steps, hidden + 1), torch.empty(batch, steps, hidden)
        kernel().textrnn_rnn_forward(steps, batch, hidden, w_t.data_ptr(), out.data_ptr(), before.data_ptr(),
                                     threads)
        kernel().textrnn_rnn_backward(steps, batch, hidden, w.data_ptr(), out.data_ptr(), grad_out.data_ptr(),
                                      pre.data_ptr(), threads)
        results.append((out, before, pre))
    assert torch.equal(results[0][1][:, 1:, :hidden], results[0][0][:, :-1])  # each step starts from the last
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_embedding_dropout_drops_whole_words_in_training_only():
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(500, 4, "lstm", 8, 6, 1, True, 0.0, embedding_dropout=0.5))
    tokens = torch.arange(1, 500).repeat(2, 1)  # every word twice: once in each row
    plain = model.encoder.embedding(tokens)
    dropped = model.encoder.embed(tokens)
    zero = (dropped == 0).all(-1)
    assert torch.equal(zero[0], zero[1])  # a word is dropped everywhere in the batch or nowhere
    assert torch.allclose(dropped[~zero], 2 * plain[~zero])  # the kept ones scaled by 1 / (1 - p)
    assert 0.4 < zero[0].float().mean() < 0.6
    model.eval()
    assert torch.equal(model.encoder.embed(tokens), plain)
    with pytest.raises(TextrnnError, match="embedding_dropout"):
        ModelConfig(500, 4, embedding_dropout=1.0)


def test_token_dropout_drops_each_occurrence_on_its_own_in_training_only():
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(500, 4, "lstm", 8, 6, 1, True, 0.0, token_dropout=0.25))
    tokens = torch.arange(1, 500).repeat(2, 1)  # every word twice: once in each row
    plain = model.encoder.embedding(tokens)
    dropped = model.encoder.embed(tokens)
    zero = (dropped == 0).all(-1)
    assert not torch.equal(zero[0], zero[1])  # the two occurrences of a word are drawn apart
    assert torch.allclose(dropped[~zero], plain[~zero] / 0.75)  # the kept ones scaled by 1 / (1 - p)
    assert 0.18 < zero.float().mean() < 0.32
    assert ((dropped == 0) == zero[..., None]).all()  # a dropped token loses its whole vector
    model.eval()
    assert torch.equal(model.encoder.embed(tokens), plain)
    with pytest.raises(TextrnnError, match="token_dropout"):
        ModelConfig(500, 4, token_dropout=-0.1)


def test_input_dropout_drops_the_same_features_at_every_step_in_training_only():
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(500, 4, "lstm", 64, 6, 1, True, 0.0, input_dropout=0.5))
    tokens = torch.randint(1, 500, (8, 30))
    plain = model.encoder.embedding(tokens)
    dropped = model.encoder.embed(tokens)
    features = (dropped == 0).all(1)  # (texts, features): zero at every step of the text
    assert torch.equal(dropped == 0, features[:, None, :].expand_as(dropped))  # and nowhere else
    assert torch.allclose(dropped[~(dropped == 0)], 2 * plain[~(dropped == 0)])
    assert len({tuple(row.tolist()) for row in features}) == 8  # each text draws its own features
    assert 0.4 < features.float().mean() < 0.6
    model.eval()
    assert torch.equal(model.encoder.embed(tokens), plain)
    with pytest.raises(TextrnnError, match="input_dropout"):
        ModelConfig(500, 4, input_dropout=1.0)


@pytest.mark.parametrize("ngrams", [1, 2, 3])
def test_the_bag_of_ngrams_keeps_masking_exact(ngrams):
    torch.manual_seed(0)
    config = ModelConfig(60, 4, "lstm", 12, 10, 1, True, 0.0, pooling="concat", ngrams=ngrams,
                         ngram_buckets=97 if ngrams > 1 else 0)
    model = RNNClassifier(config).eval()
    tokens, lengths = _batch([5, 3, 7, 1, 9, 2, 6, 4, 8, 11, 10])
    with torch.no_grad():
        batched = model(tokens, lengths)
        alone = torch.cat([model(tokens[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
        wider = model(torch.nn.functional.pad(tokens, (0, 5)), lengths)  # more padding changes nothing either
    assert torch.allclose(batched, alone, atol=1e-5, rtol=0)
    assert torch.allclose(batched, wider, atol=1e-5, rtol=0)
    assert model.head.in_features == 3 * 20 + 12  # the pooled states, then the bag's mean vector


def test_the_bag_is_the_mean_of_the_words_and_their_hashed_ngrams():
    from textrnn.models.classifier import NGRAM_HASH_PRIME

    torch.manual_seed(0)
    config = ModelConfig(60, 4, "lstm", 12, 10, ngrams=3, ngram_buckets=97)
    model = RNNClassifier(config).eval()
    assert model.embedding.num_embeddings == 60 + 97  # the words' rows, then the n-grams'
    text = [7, 23, 5, 41]
    rows = list(text)
    rows += [60 + (a * NGRAM_HASH_PRIME + b) % 97 for a, b in zip(text, text[1:])]
    rows += [60 + ((a * NGRAM_HASH_PRIME + b) % 97 * NGRAM_HASH_PRIME + c) % 97
             for a, b, c in zip(text, text[1:], text[2:])]
    assert len(rows) == 4 + 3 + 2
    tokens = torch.tensor([text + [0, 0], [9, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        bag = model.bag_of_ngrams(tokens, torch.tensor([4, 1]))
        assert torch.allclose(bag[0], model.embedding.weight[rows].mean(0), atol=1e-6)
        assert torch.allclose(bag[1], model.embedding.weight[9], atol=1e-6)  # one word: no n-grams yet
        assert torch.equal(model.bag_of_ngrams(tokens, torch.tensor([0, 0])), torch.zeros(2, 12))  # empty texts
    swapped = torch.tensor([[23, 7, 5, 41]])  # the order of the words moves their bigram to another row
    assert not torch.allclose(model.bag_of_ngrams(swapped, torch.tensor([4])), bag[:1])


def test_ngram_dropout_leaves_out_occurrences_in_training_only():
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(500, 4, "lstm", 8, 6, ngrams=2, ngram_buckets=1000, ngram_dropout=0.5))
    tokens = torch.randint(2, 500, (64, 40))
    lengths = torch.full((64,), 40)
    model.eval()
    plain = model.bag_of_ngrams(tokens, lengths)
    assert torch.equal(plain, model.bag_of_ngrams(tokens, lengths))
    model.train()
    with torch.no_grad():  # feature 0: 1 in every row; feature 1: 1 in the words' rows, 0 in the bigrams'
        model.embedding.weight[:, 0] = 1.0
        model.embedding.weight[:, 1] = (torch.arange(1500) < 500).float()
    dropped = model.bag_of_ngrams(tokens, lengths).detach()
    assert torch.allclose(dropped[:, 0], torch.ones(64))  # the mean of the entries kept, not a rescaled sum
    words = dropped[:, 1]  # each text's share of words among its kept entries (40 of 79 without dropout)
    assert len(set(words.tolist())) > 10 and abs(float(words.mean()) - 40 / 79) < 0.03
    model.eval()
    assert torch.allclose(model.bag_of_ngrams(tokens, lengths)[:, 1], torch.full((64,), 40 / 79))
    with pytest.raises(TextrnnError, match="ngram_dropout"):
        ModelConfig(500, 4, ngrams=2, ngram_buckets=10, ngram_dropout=1.0)
    with pytest.raises(TextrnnError, match="ngram_buckets"):
        ModelConfig(500, 4, ngrams=2)
    with pytest.raises(TextrnnError, match="ngrams must be"):
        ModelConfig(500, 4, ngrams=4, ngram_buckets=10)
    with pytest.raises(TextrnnError, match="bag_of_ngrams"):
        model.forward_embedded(model.encoder.embed(tokens), lengths)
