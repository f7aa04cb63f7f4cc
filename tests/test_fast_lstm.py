"""The compiled LSTM recurrence (textrnn.models.fast_lstm) against PyTorch's own LSTM, on the paths it replaces."""

import logging

import pytest
import torch
from torch import nn

from textrnn.models import ModelConfig, RNNClassifier
from textrnn import native
from textrnn.models import fast_lstm
from textrnn.models.fast_lstm import LSTM, bidirectional, kernel

TOLERANCE = 2e-5  # float rounding: the kernel's exp is a polynomial, its sums run in another order


def _largest_difference(expected, got):
    return max((a - b).abs().max().item() for a, b in zip(expected, got))


def test_the_kernel_builds_here():
    # every other test here compares the kernel with PyTorch; without it they would compare PyTorch with itself
    assert kernel() is not None, "no C++ compiler (g++)? .ci/run installs one"


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("hidden", [32, 8, 10])  # 8 and 10 run padded to 16 units (the lesson's LSTM(8))
def test_outputs_and_gradients_equal_nn_lstm(layers, with_state, hidden):
    torch.manual_seed(0)
    reference = nn.LSTM(24, hidden, num_layers=layers, batch_first=True)
    mine = LSTM(24, hidden, num_layers=layers)
    mine.load_state_dict(reference.state_dict())
    x = torch.randn(6, 9, 24, requires_grad=True)
    state = tuple(torch.randn(layers, 6, hidden, requires_grad=True) for _ in range(2)) if with_state else None
    assert mine.uses_kernel(x)
    weights = [torch.randn(6, 9, hidden), torch.randn(layers, 6, hidden), torch.randn(layers, 6, hidden)]

    def run(lstm):
        out, (h, c) = lstm(x, state)
        loss = sum((t * w).sum() for t, w in zip((out, h, c), weights))
        inputs = [x, *(state or ()), *lstm.parameters()]
        return [out, h, c], torch.autograd.grad(loss, inputs)

    (expected, expected_grads), (got, got_grads) = run(reference), run(mine)
    assert _largest_difference(expected, got) < TOLERANCE
    assert _largest_difference(expected_grads, got_grads) < TOLERANCE


@pytest.mark.parametrize("hidden", [32, 10])
def test_bidirectional_reads_the_backward_direction_within_each_length(hidden):
    torch.manual_seed(0)
    forward, backward = LSTM(24, hidden), LSTM(24, hidden)
    x = torch.randn(7, 11, 24, requires_grad=True)
    lengths = torch.tensor([11, 5, 0, 1, 10, 3, 11])
    # the reference: reverse each row's real positions, run nn.LSTM, put the outputs back in place
    positions = torch.arange(11)[None]
    order = torch.where(positions < lengths[:, None], (lengths[:, None] - 1) - positions, positions)

    def reversed_rows(t):
        return t.gather(1, order[:, :, None].expand_as(t))

    weights, final_weights = torch.randn(7, 11, 2 * hidden), torch.randn(7, 2 * hidden)
    inputs = [x, *forward.parameters(), *backward.parameters()]
    last = (lengths - 1).clamp(min=0)

    def reference():
        steps = torch.cat([nn.LSTM.forward(forward, x)[0],
                           reversed_rows(nn.LSTM.forward(backward, reversed_rows(x))[0])], dim=2)
        # each row's final states: forward's at its last real position, backward's at position 0
        return steps, torch.cat([steps[torch.arange(7), last, :hidden], steps[:, 0, hidden:]], dim=1)

    expected, expected_final = reference()
    expected_grads = torch.autograd.grad((expected * weights).sum() + (expected_final * final_weights).sum(), inputs)
    got, got_final = bidirectional(forward, backward, x, lengths)
    got_grads = torch.autograd.grad((got * weights).sum() + (got_final * final_weights).sum(), inputs)
    assert (expected - got).abs().max() < TOLERANCE
    assert (expected_final - got_final).abs().max() < TOLERANCE
    assert _largest_difference(expected_grads, got_grads) < TOLERANCE
    # the final states alone (what "last" pooling reads): no gradient arrives for the other steps at all
    expected_grads = torch.autograd.grad((reference()[1] * final_weights).sum(), inputs)
    got_grads = torch.autograd.grad((bidirectional(forward, backward, x, lengths)[1] * final_weights).sum(), inputs)
    assert _largest_difference(expected_grads, got_grads) < TOLERANCE


def test_a_rows_arithmetic_does_not_depend_on_the_thread_count():
    # the kernel alone (PyTorch's matmuls around it may round by the thread count): the same gates in, the same
    # bits out, however many threads share the 37 rows
    torch.manual_seed(0)
    batch, steps, hidden = 37, 13, 32
    gates = torch.randn(batch, steps, 4 * hidden)
    w_t, bias = torch.randn(hidden, 4 * hidden) * 0.2, torch.randn(4 * hidden)
    lengths = torch.randint(0, steps + 1, (batch,), dtype=torch.int32)
    results = []
    for threads in (1, 2, 3):
        g, cell, out = gates.clone(), *(torch.empty(batch, steps, hidden) for _ in range(2))
        before, final = torch.empty(batch, steps, hidden + 1), torch.empty(batch, hidden)
        final_steps = (lengths - 1).clamp(min=0)
        kernel().textrnn_lstm_forward(steps, batch, hidden, 4 * hidden, hidden, hidden + 1, lengths.data_ptr(),
                                      final_steps.data_ptr(), w_t.data_ptr(), bias.data_ptr(), None, None,
                                      g.data_ptr(), cell.data_ptr(), out.data_ptr(), before.data_ptr(),
                                      final.data_ptr(), threads)
        results.append(torch.cat([g.flatten(), cell.flatten(), out.flatten(), before.flatten(), final.flatten()]))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


@pytest.mark.parametrize("lengths", [[5, 3, 7, 1, 9, 2, 6, 4, 8, 11, 10], [4, 0, 2]])
def test_masked_bilstm_logits_on_the_kernel_do_not_depend_on_padding(lengths):
    torch.manual_seed(0)
    model = RNNClassifier(ModelConfig(60, 4, "lstm", 12, 16, 2, True, 0.0, mask=True)).eval()
    lengths = torch.tensor(lengths)
    tokens = torch.zeros(len(lengths), int(lengths.max()), dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        tokens[i, :n] = torch.randint(2, 60, (n,))
    assert model.encoder.rnn[0]["forward_rnn"].uses_kernel(torch.zeros(1, 1, 12))
    with torch.no_grad():
        batched = model(tokens, lengths)
        alone = torch.cat([model(tokens[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
    assert torch.allclose(batched, alone, atol=1e-5, rtol=0)


def test_the_kernel_steps_aside_where_it_does_not_apply(monkeypatch):
    lstm = LSTM(12, 16)
    x = torch.randn(2, 3, 12)
    assert lstm.uses_kernel(x)
    assert LSTM(12, 10).uses_kernel(x)  # hidden size not a multiple of 16: padded with zero units
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not lstm.uses_kernel(x)  # oneDNN's bf16 kernel
    assert not lstm.uses_kernel(x.double())
    monkeypatch.setenv(fast_lstm.ENABLED_ENV, "0")
    kernel.cache_clear()
    try:
        assert kernel() is None and not lstm.uses_kernel(x)
        reference = nn.LSTM(12, 16, batch_first=True)
        reference.load_state_dict(lstm.state_dict())
        assert torch.equal(lstm(x)[0], reference(x)[0])  # nn.LSTM's own path, exactly
    finally:
        monkeypatch.delenv(fast_lstm.ENABLED_ENV)
        kernel.cache_clear()
    assert kernel() is not None


def test_a_library_built_from_another_version_of_the_source_is_not_used(monkeypatch, caplog):
    monkeypatch.setattr(fast_lstm, "ABI", fast_lstm.ABI + 1)
    kernel.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger=native.__name__):
            assert kernel() is None
        assert "does not match" in caplog.text
    finally:
        monkeypatch.undo()
        kernel.cache_clear()
    assert kernel() is not None
