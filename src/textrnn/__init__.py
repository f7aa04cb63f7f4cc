"""textrnn: recurrent-network text classifiers (SimpleRNN, LSTM, GRU) that train fast on a CPU."""

from .data import load_ag_news, load_dataset, load_files
from .errors import DataError, TextrnnError
from .estimator import TextClassifier
from .text import Vectorizer
from .version import __version__

__all__ = ["TextClassifier", "Vectorizer", "load_dataset", "load_files", "load_ag_news", "TextrnnError", "DataError",
           "__version__"]
