"""Unlabelled text for language models: plain text files, one text per non-empty line (.gz ok), and a held-out
share of a list of texts for validation."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .files import check_utf8, read_bytes


def read_corpus(paths: Sequence[str | Path]) -> list[str]:
    """Every non-empty line of the files, in order."""
    texts = []
    for path in map(Path, paths):
        if path.is_dir():
            raise DataError(f"{path} is a folder: give plain text files (one text per line)")
        data = read_bytes(path)
        check_utf8(data, path)
        texts.extend(line.strip() for line in data.decode("utf-8").splitlines() if line.strip())
    return texts


def hold_out(texts: Sequence[str], fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """(kept, held out): a seeded random `fraction` of the texts (at least one) set aside for validation."""
    if not 0 < fraction < 1:
        raise DataError(f"the validation fraction must be in (0, 1), got {fraction}")
    if len(texts) < 2:
        raise DataError(f"{len(texts)} text(s): too few to set any aside for validation")
    order = np.random.default_rng(seed).permutation(len(texts))
    n = max(1, int(round(fraction * len(texts))))
    held = set(order[:n].tolist())
    return [t for i, t in enumerate(texts) if i not in held], [texts[i] for i in sorted(held)]
