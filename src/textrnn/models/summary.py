"""Parameter counts and a Keras-style `summary()` table of a classifier."""

from __future__ import annotations

from .classifier import RNNClassifier
from .config import CELL_NAMES


def count_parameters(model: RNNClassifier) -> dict[str, int]:
    """PyTorch's parameter count and the count Keras would report for the same layers.

    PyTorch's RNN and LSTM keep two bias vectors per layer and direction (`bias_ih` and `bias_hh`) where Keras's
    SimpleRNN and LSTM keep one, so they carry `gates * hidden` more parameters per layer and direction. Keras's
    GRU (reset_after=True, the cuDNN form) keeps both biases, as PyTorch does, so the GRU counts agree.
    """
    total = sum(p.numel() for p in model.parameters())
    extra = 0
    if model.config.cell != "gru":
        extra = sum(p.numel() for n, p in model.encoder.rnn.named_parameters() if "bias_hh" in n)
    return {"pytorch": total, "keras": total - extra}


def summary(model: RNNClassifier, name: str = "textrnn") -> str:
    """A table in the manner of Keras's `model.summary()`: layers, output shapes, parameter counts."""
    c = model.config
    rnn = model.encoder.rnn
    rows = [("embedding (Embedding)", f"(None, None, {c.embedding_dim})", model.embedding.weight.numel())]
    cell = CELL_NAMES[c.cell]
    for layer in range(c.layers):
        if c.bidirectional:
            params = sum(p.numel() for p in rnn[layer].parameters())
        else:
            params = sum(p.numel() for n, p in rnn.named_parameters() if n.endswith(f"_l{layer}"))
        width = c.state_size
        shape = f"(None, None, {width})" if layer < c.layers - 1 or c.pooling != "last" else f"(None, {width})"
        kind = f"Bidirectional {cell}" if c.bidirectional else cell
        rows.append((f"{c.cell}_{layer + 1} ({kind})", shape, params))
    if c.pooling != "last" or c.ngrams:
        ngrams = f" + {c.ngrams}-gram bag" if c.ngrams else ""
        rows.append((f"pool ({c.pooling}{ngrams})", f"(None, {model.pooled_size})", 0))
    rows.append(("dense (Linear)", f"(None, {c.num_classes})", sum(p.numel() for p in model.head.parameters())))
    counts = count_parameters(model)
    w0 = max(28, max(len(r[0]) for r in rows) + 2)
    w1 = 22
    line = "─" * (w0 + w1 + 14)
    out = [f'Model: "{name}"', line, f"{'Layer (type)':<{w0}}{'Output shape':<{w1}}{'Param #':>14}", line]
    out += [f"{a:<{w0}}{b:<{w1}}{p:>14,}" for a, b, p in rows]
    out.append(line)
    out.append(f"Total params: {counts['pytorch']:,}")
    out.append(f"Keras count:  {counts['keras']:,}" + (
        "  (PyTorch keeps a second bias vector per gate, bias_hh, that Keras's SimpleRNN/LSTM do not have)"
        if counts["keras"] != counts["pytorch"] else "  (same as PyTorch's)"))
    out.append(f"Masking: {'on (padding skipped in the recurrence)' if c.mask else 'off (the RNN reads the padding)'}")
    return "\n".join(out)
