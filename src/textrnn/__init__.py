"""textrnn: recurrent-network text classifiers (SimpleRNN, LSTM, GRU) that train fast on a CPU.

The public names are imported when first used (PEP 562), not here: `TextClassifier` needs torch and scikit-learn
(about 2.5 s of imports on a 2-core machine), and `textrnn --help`, or a bad file named on the command line,
should not wait for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import DataError, TextrnnError
from .version import __version__

if TYPE_CHECKING:
    from .data import load_ag_news, load_dataset, load_files
    from .estimator import TextClassifier
    from .text import Vectorizer

_HOMES = {"TextClassifier": ".estimator", "Vectorizer": ".text", "load_dataset": ".data", "load_files": ".data",
          "load_ag_news": ".data"}

__all__ = ["TextClassifier", "Vectorizer", "load_dataset", "load_files", "load_ag_news", "TextrnnError", "DataError",
           "__version__"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'textrnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
