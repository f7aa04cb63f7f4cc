"""Networks: the shape (config), the recurrent encoder, the classifier built on it, and its summary."""

from .classifier import RNNClassifier, pool
from .config import CELL_NAMES, CELLS, POOLINGS, ModelConfig
from .encoder import Encoded, RNNEncoder
from .summary import count_parameters, summary

__all__ = ["CELLS", "CELL_NAMES", "POOLINGS", "Encoded", "ModelConfig", "RNNClassifier", "RNNEncoder",
           "count_parameters", "pool", "summary"]
