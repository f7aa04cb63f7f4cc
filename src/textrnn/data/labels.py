"""Texts and labels as they enter: texts checked to be strings, labels as ids into a list of class names."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import TextrnnError


def check_texts(texts: Any, what: str = "texts") -> list[str]:
    """`texts` as a list of strings, or a TextrnnError naming the first that is not one."""
    if isinstance(texts, str):
        raise TextrnnError(f"{what} must be a list of strings, not a single string: wrap it in a list")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TextrnnError(f"{what}[{bad}] is a {type(texts[bad]).__name__}, not a string")
    return texts


def encode_labels(labels: Sequence, classes: Sequence[str] | None,
                  unseen: dict | None = None) -> tuple[np.ndarray, list[str]]:
    """Label ids and class names.

    Strings are class names. Integers are indices into `classes` when the class names are words (AG News:
    0 = "World"), else values whose names are their decimal strings (a CSV with labels 1 and 2). With
    `unseen`, labels outside `classes` are counted there (name -> count) and get id -1 instead of failing.
    """
    labels = list(labels)
    ints = all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in labels)
    if not ints and not all(isinstance(y, str) for y in labels):
        raise TextrnnError("labels must be all integers or all strings")
    if classes is None:
        names = [str(v) for v in sorted(set(labels))]
    else:
        names = [str(n) for n in classes]
    if ints and classes is not None and not all(n.lstrip("-").isdigit() for n in names):
        as_names = [names[y] if 0 <= y < len(names) else str(y) for y in labels]
    else:
        as_names = [str(y) for y in labels]
    index = {name: i for i, name in enumerate(names)}
    ids = np.fromiter((index.get(n, -1) for n in as_names), dtype=np.int64, count=len(as_names))
    if (ids < 0).any():
        missing = [n for n, i in zip(as_names, ids) if i < 0]
        if unseen is None:
            raise TextrnnError(f"labels not among the classes ({', '.join(names)}): "
                               f"{', '.join(map(repr, sorted(set(missing))[:5]))}")
        for n in missing:
            unseen[n] = unseen.get(n, 0) + 1
    return ids, names
