"""Data: files and built-in datasets -> texts and labels; token ids -> batches.

Batching needs torch; it is imported when first used (PEP 562), so that reading and checking files does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .datasets import DATASETS, load_ag_news, load_dataset
from .files import Dataset, Split, fingerprint, load_files, read_labelled
from .labels import check_texts, encode_labels
from .sources import DataSource

if TYPE_CHECKING:
    from .batching import TokenizedCorpus, iterate_batches

__all__ = ["DATASETS", "DataSource", "Dataset", "Split", "TokenizedCorpus", "check_texts", "encode_labels",
           "fingerprint", "iterate_batches", "load_ag_news", "load_dataset", "load_files", "read_labelled"]


def __getattr__(name: str):
    if name not in ("TokenizedCorpus", "iterate_batches"):
        raise AttributeError(f"module 'textrnn.data' has no attribute {name!r}")
    from . import batching

    value = getattr(batching, name)
    globals()[name] = value
    return value
