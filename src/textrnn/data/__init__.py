"""Data: files and built-in datasets -> texts and labels; token ids -> batches."""

from .batching import TokenizedCorpus, iterate_batches
from .datasets import DATASETS, load_ag_news, load_dataset
from .files import Dataset, Split, fingerprint, load_files, read_labelled
from .labels import check_texts, encode_labels
from .sources import DataSource

__all__ = ["DATASETS", "DataSource", "Dataset", "Split", "TokenizedCorpus", "check_texts", "encode_labels",
           "fingerprint", "iterate_batches", "load_ag_news", "load_dataset", "load_files", "read_labelled"]
