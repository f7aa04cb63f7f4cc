"""textrnn: recurrent-network text classifiers (SimpleRNN, LSTM, GRU) that train fast on a CPU."""

__version__ = "0.1.0"

from .classifier import TextClassifier  # noqa: E402
from .data import load_files  # noqa: E402
from .datasets import load_ag_news, load_dataset  # noqa: E402
from .errors import DataError, TextrnnError  # noqa: E402
from .vectorizer import Vectorizer  # noqa: E402

__all__ = ["TextClassifier", "Vectorizer", "load_dataset", "load_files", "load_ag_news", "TextrnnError", "DataError",
           "__version__"]
