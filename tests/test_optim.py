import contextlib

import pytest
import torch

from textrnn.training import optim
from textrnn.training.optim import FastAdam


@contextlib.contextmanager
def operators_only(monkeypatch):
    """FastAdams built inside run on PyTorch's operators, not the compiled step (adam_kernel.cpp)."""
    monkeypatch.setenv(optim.ENABLED_ENV, "0")
    optim.kernel.cache_clear()
    try:
        yield
    finally:
        monkeypatch.delenv(optim.ENABLED_ENV)
        optim.kernel.cache_clear()


def _model():
    torch.manual_seed(0)
    return torch.nn.ModuleList([torch.nn.Embedding(300, 8), torch.nn.LSTM(8, 6, batch_first=True),
                                torch.nn.Linear(6, 3)])


def _train(model, optimizer, steps, sparse):
    model[0].sparse = sparse
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        tokens = torch.randint(0, 300, (4, 5), generator=g)  # each batch touches a few of the 300 rows
        loss = model[2](model[1](model[0](tokens))[1][0][-1]).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if isinstance(optimizer, FastAdam):
        optimizer.flush()


@pytest.mark.parametrize("steps", [5, 200])
def test_fast_adam_follows_dense_adam(steps):
    reference, fast, lazy, start = _model(), _model(), _model(), _model()
    _train(reference, torch.optim.Adam(reference.parameters(), lr=1e-3), steps, sparse=False)
    _train(fast, FastAdam(fast.parameters(), embedding=fast[0], lr=1e-3), steps, sparse=True)
    _train(lazy, FastAdam(lazy.parameters(), embedding=lazy[0], lr=1e-3, catch_up=False), steps, sparse=True)
    moved = (reference[0].weight - start[0].weight).abs().max()
    fast_error = (reference[0].weight - fast[0].weight).abs().max()
    lazy_error = (reference[0].weight - lazy[0].weight).abs().max()
    # dense parameters: the same arithmetic as torch.optim.Adam
    for a, b in zip(list(reference[1].parameters()) + list(reference[2].parameters()),
                    list(fast[1].parameters()) + list(fast[2].parameters())):
        assert torch.allclose(a, b, atol=1e-5)
    # the embedding: within 0.5% of how far dense Adam moved it; lazy Adam (no catch-up) is far off
    assert fast_error < 0.005 * moved
    assert lazy_error > 0.02 * moved


def test_catch_up_is_exact_without_epsilon():
    weights = torch.randn(6, 3)
    dense = torch.nn.Embedding(6, 3)
    sparse = torch.nn.Embedding(6, 3, sparse=True)
    with torch.no_grad():
        dense.weight.copy_(weights)
        sparse.weight.copy_(weights)
    adam = torch.optim.Adam(dense.parameters(), lr=0.1, eps=1e-30)
    fast = FastAdam(sparse.parameters(), embedding=sparse, lr=0.1, eps=1e-30)
    for rows in ([0, 1], [2], [2, 2], [3], [1, 5], [0]):
        for emb, opt in ((dense, adam), (sparse, fast)):
            opt.zero_grad()
            (emb(torch.tensor(rows)) * torch.arange(1.0, 4.0)).sum().backward()
            opt.step()
        # reading a row through the embedding brings it up to date first
        assert torch.allclose(dense(torch.tensor([0, 4])), sparse(torch.tensor([0, 4])), atol=1e-6)
    fast.flush()
    assert torch.allclose(dense.weight, sparse.weight, atol=1e-6)


def test_gradients_live_in_one_flat_buffer():
    model = _model()
    optimizer = FastAdam(model.parameters(), embedding=model[0])
    lstm_weight = model[1].weight_ih_l0
    assert lstm_weight.data_ptr() >= optimizer.flat.data_ptr()
    _train(model, optimizer, 1, sparse=True)
    assert optimizer.flat_grad.abs().sum() > 0
    optimizer.zero_grad()
    assert optimizer.flat_grad.abs().sum() == 0 and lstm_weight.grad is not None


def test_fast_adam_clips_the_whole_gradient_to_its_norm():
    reference, fast = _model(), _model()
    adam = torch.optim.Adam(reference.parameters(), lr=1e-2)
    clipped = FastAdam(fast.parameters(), embedding=fast[0], lr=1e-2, max_grad_norm=0.1)
    fast[0].sparse = True
    tokens = torch.tensor([[1, 2, 3, 2]])
    for model, opt in ((reference, adam), (fast, clipped)):
        opt.zero_grad()
        (model[2](model[1](model[0](tokens))[1][0][-1]).pow(2).sum() * 100).backward()
    dense_norm = torch.cat([p.grad.flatten() for p in reference.parameters()]).norm()
    assert dense_norm > 1.0  # large enough to be clipped
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.1)
    adam.step()
    clipped.step()
    clipped.flush()
    # Adam is scale-invariant on one step, so compare the moments: they hold the clipped gradient
    assert torch.allclose(clipped.flat_exp_avg.norm(), torch.cat(
        [adam.state[p]["exp_avg"].flatten() for p in list(reference.parameters())[1:]]).norm(), rtol=1e-4)


def test_weight_decay_matches_adamw():
    """Decoupled weight decay, with skipped rows shrunk at catch-up, follows torch's dense AdamW."""
    reference, fast = _model(), _model()
    _train(reference, torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=0.5), 60, sparse=False)
    _train(fast, FastAdam(fast.parameters(), embedding=fast[0], lr=1e-2, weight_decay=0.5), 60, sparse=True)
    plain = _model()
    _train(plain, torch.optim.Adam(plain.parameters(), lr=1e-2), 60, sparse=False)
    start = _model()
    for a, b in zip(list(reference.parameters())[1:], list(fast.parameters())[1:]):
        assert torch.allclose(a, b, atol=1e-5)  # dense parameters: AdamW's arithmetic
    moved = (reference[0].weight - start[0].weight).abs().max()
    error = (reference[0].weight - fast[0].weight).abs().max()
    assert error < 0.005 * moved
    # and the decay does something: without it the embedding ends far from AdamW's
    assert (plain[0].weight - reference[0].weight).abs().max() > 20 * error


def test_state_dict_round_trip_continues_bit_for_bit():
    """Saving the optimizer mid-run and loading it into a fresh one gives exactly the same next steps."""
    a = _model()
    opt_a = FastAdam(a.parameters(), embedding=a[0], lr=1e-2, weight_decay=0.1)
    a[0].sparse = True
    g = torch.Generator().manual_seed(3)
    batches = [torch.randint(0, 300, (4, 5), generator=g) for _ in range(12)]

    def run(model, opt, chunk):
        for tokens in chunk:
            loss = model[2](model[1](model[0](tokens))[1][0][-1]).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()

    run(a, opt_a, batches[:5])
    saved_model = {k: v.clone() for k, v in a.state_dict().items()}
    saved_opt = opt_a.state_dict()
    run(a, opt_a, batches[5:])
    opt_a.flush()

    b = _model()
    b[0].sparse = True
    opt_b = FastAdam(b.parameters(), embedding=b[0], lr=1e-2, weight_decay=0.1)
    b.load_state_dict(saved_model)
    opt_b.load_state_dict(saved_opt)
    run(b, opt_b, batches[5:])
    opt_b.flush()
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_the_compiled_step_builds_here():
    # the tests above run FastAdam's compiled step; without it they would test the operators twice
    assert optim.kernel() is not None, "no C++ compiler (g++)? .ci/run installs one"
    model = _model()
    assert FastAdam(model.parameters(), embedding=model[0])._native is not None


@pytest.mark.parametrize("settings", [{}, {"weight_decay": 0.3}, {"max_grad_norm": 0.05}, {"catch_up": False}])
def test_the_compiled_step_computes_what_the_operators_do(monkeypatch, settings):
    """Both paths over 80 steps of batches with repeated rows: the same weights and moments to float rounding
    (the compiled one sums a row's repeats in the order they occur, the operators after sorting)."""
    compiled, operators = _model(), _model()
    fast = FastAdam(compiled.parameters(), embedding=compiled[0], lr=1e-2, **settings)
    with operators_only(monkeypatch):
        plain = FastAdam(operators.parameters(), embedding=operators[0], lr=1e-2, **settings)
    assert fast._native is not None and plain._native is None
    _train(compiled, fast, 80, sparse=True)
    _train(operators, plain, 80, sparse=True)
    start = _model()
    for (name, a), b, s in zip(compiled.named_parameters(), operators.parameters(), start.parameters()):
        moved = (b - s).abs().max()
        assert moved > 1e-3, name  # every weight moved: the comparison below is not of two untouched tensors
        assert (a - b).abs().max() < 1e-4 * moved + 1e-6, name
    assert torch.allclose(fast._moments, plain._moments, rtol=1e-4, atol=1e-9)
    assert torch.equal(fast._row_step, plain._row_step)
    assert torch.allclose(fast.flat_exp_avg_sq, plain.flat_exp_avg_sq, rtol=1e-4, atol=1e-12)


def test_the_compiled_coalescing_sums_repeats_and_leaves_its_scratch_clean():
    model = _model()
    optimizer = FastAdam(model.parameters(), embedding=model[0])
    model[0].sparse = True
    tokens = torch.tensor([[7, 3, 7, 299], [3, 7, 0, 0]])
    (model[0](tokens) * torch.arange(1.0, 9.0)).sum().backward()
    rows, values = optimizer._coalesce(model[0].weight.grad)
    assert rows.tolist() == [7, 3, 299, 0]  # first occurrences, in order
    assert torch.equal(values[0], torch.arange(1.0, 9.0) * 3) and torch.equal(values[3], torch.arange(1.0, 9.0) * 2)
    assert (optimizer._slot == -1).all()


def test_a_token_outside_the_table_is_refused_before_anything_is_written():
    embedding = torch.nn.Embedding(300, 8, sparse=True)
    optimizer = FastAdam(embedding.parameters(), embedding=embedding)
    for tokens in ([1, 2], [3]):  # two steps: row 1 has one to catch up when next read
        optimizer.zero_grad()
        embedding(torch.tensor(tokens)).sum().backward()
        optimizer.step()
    before = embedding.weight.detach().clone()
    with pytest.raises(IndexError, match="300 is out of range for an embedding of 300 rows"):
        embedding(torch.tensor([[1, 300]]))
    assert torch.equal(embedding.weight, before)  # row 1 not caught up either
    assert not torch.equal(embedding(torch.tensor([1])), before[1:2])  # (which a valid read does)


def test_a_new_build_removes_the_builds_of_its_kernel_nobody_has_loaded_for_a_month(monkeypatch, tmp_path):
    """An upgrade leaves the last version's build behind; the next build of the same kernel removes it once no
    process has loaded it for STALE_AFTER_S, and leaves recent builds and other kernels' builds alone."""
    import os
    import time

    from textrnn import native
    from textrnn.training import optim

    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    old = time.time() - native.STALE_AFTER_S - 3600
    stale, recent, other = (kernels / name for name in ("adam_kernel-0000000000000000.so",
                                                        "adam_kernel-1111111111111111.so",
                                                        "lstm_kernel-2222222222222222.so"))
    for path in (stale, recent, other):
        path.write_bytes(b"not a library")
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    lib = native.load(optim.SOURCE, "textrnn_adam_abi", optim.ABI, optim.ENABLED_ENV, optim.SIGNATURES)
    assert lib is not None
    built = [p for p in kernels.glob("adam_kernel-*.so") if p not in (stale, recent)]
    assert len(built) == 1 and not stale.exists() and recent.exists() and other.exists()
    # loading an existing build marks it as used, so a later build elsewhere keeps it
    os.utime(built[0], (old, old))
    assert native.load(optim.SOURCE, "textrnn_adam_abi", optim.ABI, optim.ENABLED_ENV, optim.SIGNATURES) is not None
    assert time.time() - built[0].stat().st_mtime < 60
