"""Token ids held once as one flat array, and the two ways of cutting them into minibatches.

* `sequential` — the lesson's way: rows in file order, each batch padded at the end to its longest row.
* `shuffle` — rows in a new random order every epoch, each batch padded (what a plain DataLoader does).
* `bucket` — rows sorted by length (random order among equal lengths), cut into batches, and the batches
  shuffled. Almost every batch then holds one length only, so the RNN runs on a dense tensor with no padding,
  which is what lets PyTorch use its fused CPU (oneDNN) and GPU (cuDNN) kernels. Reshuffled every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

BATCHING_MODES = ("bucket", "shuffle", "sequential")
TRUNCATION = ("head", "tail", "both")


def truncate(sequence: np.ndarray, max_len: int, keep: str = "head") -> np.ndarray:
    """At most `max_len` tokens: the first ones, the last ones, or both ends (the middle dropped)."""
    if len(sequence) <= max_len:
        return sequence
    if keep == "head":
        return sequence[:max_len]
    if keep == "tail":
        return sequence[len(sequence) - max_len :]
    head = (max_len + 1) // 2
    return np.concatenate([sequence[:head], sequence[len(sequence) - (max_len - head) :]])


@dataclass
class TokenizedCorpus:
    """Ragged token ids: row i is `ids[offsets[i]:offsets[i] + lengths[i]]`."""

    ids: np.ndarray  # int64, all rows concatenated
    offsets: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @classmethod
    def from_flat(cls, ids: np.ndarray, lengths: np.ndarray, max_len: int | None = None,
                  keep: str = "head") -> "TokenizedCorpus":
        """From all ids in one array and each row's length (Vectorizer.encode_flat), truncating without a loop."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if max_len is not None and len(lengths) and lengths.max() > max_len:
            if max_len < 1 or keep not in TRUNCATION:
                raise ValueError(f"bad truncation: max_len={max_len}, keep={keep!r}")
            starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
            row_len = np.repeat(lengths, lengths)
            position = np.arange(len(ids)) - starts
            head = {"head": max_len, "tail": 0, "both": (max_len + 1) // 2}[keep]
            kept = (position < np.minimum(head, row_len)) | (position >= row_len - (max_len - head))
            kept &= row_len > 0
            ids = ids[kept]
            lengths = np.minimum(lengths, max_len)
        offsets = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        return cls(np.asarray(ids, dtype=np.int64), offsets, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, lengths) for `rows`: tokens padded with 0 at the end to the longest row of the batch."""
        lengths = self.lengths[rows]
        width = int(lengths.max()) if len(rows) else 0
        # Gather every (row, position) pair at once; positions past a row's end read index 0 of `ids` and are
        # then overwritten with padding.
        positions = np.arange(width, dtype=np.int64)
        valid = positions[None, :] < lengths[:, None]
        gather = np.where(valid, self.offsets[rows][:, None] + positions[None, :], 0)
        tokens = np.where(valid, self.ids[gather] if len(self.ids) else 0, 0)
        return torch.from_numpy(tokens), torch.from_numpy(lengths.copy())


def _chunks(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def sequential_batches(n: int, batch_size: int) -> list[np.ndarray]:
    return _chunks(np.arange(n), batch_size)


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of rows of (nearly) equal length, in random order; every row appears exactly once."""
    tiebreak = rng.random(len(lengths))
    order = np.lexsort((tiebreak, lengths))
    batches = _chunks(order, batch_size)
    rng.shuffle(batches)
    return batches


def epoch_batches(corpus: TokenizedCorpus, batch_size: int, mode: str,
                  rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """The rows of each batch of one pass over the corpus, in the order they are trained on."""
    if mode == "sequential":
        return sequential_batches(len(corpus), batch_size)
    if mode == "shuffle":
        return _chunks((rng or np.random.default_rng()).permutation(len(corpus)), batch_size)
    if mode == "bucket":
        return bucketed_batches(corpus.lengths, batch_size, rng or np.random.default_rng())
    raise ValueError(f"unknown batching mode {mode!r}")


def part_of(rows: np.ndarray, part: tuple[int, int]) -> np.ndarray:
    """The k-th of n contiguous slices of a batch, for part = (k, n): what one of n data-parallel processes
    trains on. Sizes differ by at most one row (a batch of fewer than n rows leaves some slices empty); the n
    slices together are the whole batch, and a length-bucketed batch stays bucketed in every slice."""
    k, n = part
    return rows if n == 1 else np.array_split(rows, n)[k]


def iterate_batches(
    corpus: TokenizedCorpus, batch_size: int, mode: str, rng: np.random.Generator | None = None, start: int = 0
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Yield (rows, tokens, lengths) for one pass over the corpus, from batch number `start` on (a resumed
    epoch draws the same order from the same RNG state and skips the batches already trained on)."""
    for rows in epoch_batches(corpus, batch_size, mode, rng)[start:]:
        tokens, lengths = corpus.batch(rows)
        yield rows, tokens, lengths
