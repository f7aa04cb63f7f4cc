"""The lesson's four models, with its exact hyperparameters and its published numbers (SEED_SYSTEM.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import TextrnnError
from ..text import DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    text_mode: str  # "title" or "title+description"
    params: dict[str, Any]  # TextClassifier constructor arguments
    keras_params: int  # the lesson's Keras parameter count
    published_accuracy: float | None  # validation accuracy after one epoch, as the lesson reports it
    published_seconds: float | None  # the lesson's epoch time, on a GPU machine
    published_note: str = ""
    # The lesson adapts its vocabulary on the first 2,000 training titles, whatever the model reads.
    adapt_field: str = "title"
    adapt_limit: int = 2000
    extra: dict[str, Any] = field(default_factory=dict)


# The lesson: Keras's Adam at its defaults, no gradient clipping, a constant rate, every epoch trained, whole
# texts, a random embedding, the final state, no embedding dropout, no adversarial training, the network alone
# (textrnn's own defaults are its recipe, which differs in each of these).
_COMMON = dict(max_tokens=DEFAULT_MAX_TOKENS, epochs=1, lr=1e-3, dropout=0.0, layers=1, bidirectional=False,
               clip_norm=None, lr_schedule="constant", warmup=0.0, early_stopping=None, max_len=None,
               embeddings=None, pooling="last", embedding_dropout=0.0, adversarial=0.0, ngrams=0, linear_part=None)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("lesson-simple-titles", "simple, titles only", "title",
               dict(_COMMON, cell="rnn", embedding_dim=64, hidden_size=16, mask=False, batch_size=16),
               1_281_364, 0.7995, 82),
        Preset("lesson-simple-masked", "simple, masked, title+description", "title+description",
               dict(_COMMON, cell="rnn", embedding_dim=64, hidden_size=16, mask=True, batch_size=16),
               1_281_364, 0.8822, 371),
        Preset("lesson-lstm", "LSTM(8), title+description", "title+description",
               dict(_COMMON, cell="lstm", embedding_dim=64, hidden_size=8, mask=False, batch_size=8),
               1_282_372, 0.8870, 188),
        Preset("lesson-bilstm", "BiLSTM 2x64, masked", "title+description",
               dict(_COMMON, cell="lstm", embedding_dim=128, hidden_size=64, layers=2, bidirectional=True,
                    mask=True, batch_size=16),
               2_758_148, None, 600,
               "training accuracy 0.8706 at 67% of the epoch (run not finished); about 10 min"),
    ]
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise TextrnnError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
