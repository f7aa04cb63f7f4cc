"""Datasets: AG News in its canonical `ag_news_csv` layout, read from a local folder or downloaded once.

A split is a plain pair of lists (texts, integer labels) plus the fields the lesson needs (titles, for
adapting the vocabulary the way it does). Nothing here knows about tensors.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import DataError, TextrnnError

log = logging.getLogger("textrnn")

AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
AG_NEWS_TRAIN_ROWS = 120_000
# The copy torchtext downloads, and the MD5s torchtext publishes for it.
AG_NEWS_URLS = {
    "train": "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/train.csv",
    "test": "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv",
}
AG_NEWS_MD5 = {"train": "b1a00f826fdfbd249f79597b59e1dc12", "test": "d52ea96a97a2d943681189a97654912d"}

TEXT_MODES = ("title", "title+description")


@dataclass
class Split:
    """One split of a dataset: parallel lists of titles, descriptions and integer labels."""

    titles: list[str]
    descriptions: list[str]
    labels: list[int]
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def texts(self, mode: str = "title") -> list[str]:
        """The model's input text: the title alone, or title + " " + description (as the lesson joins them)."""
        if mode == "title":
            return list(self.titles)
        if mode == "title+description":
            return [t + " " + d for t, d in zip(self.titles, self.descriptions)]
        raise TextrnnError(f"unknown text mode {mode!r}: choose one of {', '.join(TEXT_MODES)}")

    def take(self, n: int | None) -> "Split":
        """The first n rows (the lesson's `ds.take(n)`)."""
        if n is None or n >= len(self):
            return self
        return Split(self.titles[:n], self.descriptions[:n], self.labels[:n], self.source)


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------------------------------
def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_ag_news_csv(path: str | Path, num_classes: int = 4) -> Split:
    """Read one `ag_news_csv` file: no header, `class,title,description`, class counted from 1."""
    path = Path(path)
    titles: list[str] = []
    descriptions: list[str] = []
    labels: list[int] = []
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                if len(row) != 3:
                    raise DataError(f"{where}: expected 3 fields (class, title, description), found {len(row)}")
                label, title, description = row
                if not label.strip().isdigit() or not 1 <= int(label) <= num_classes:
                    raise DataError(f"{where}: class must be an integer from 1 to {num_classes}, found {label!r}")
                titles.append(title)
                descriptions.append(description)
                labels.append(int(label) - 1)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it: {exc}") from None
    if not labels:
        raise DataError(f"{path}: the file holds no rows")
    return Split(titles, descriptions, labels, source=str(path))


def _find_split(directory: Path, split: str) -> tuple[Path | None, bool]:
    """The file for `split` in `directory`: `split.csv` or `split.csv.gz`, else a partial `split_*.csv[.gz]`."""
    for name in (f"{split}.csv", f"{split}.csv.gz"):
        if (directory / name).is_file():
            return directory / name, False
    partial = sorted(p for p in directory.glob(f"{split}_*.csv*") if p.name.endswith((".csv", ".csv.gz")))
    if partial:
        return partial[0], True
    return None, False


def default_data_home() -> Path:
    """Where downloaded datasets are cached: `$TEXTRNN_DATA`, else the platform's user cache directory."""
    env = os.environ.get("TEXTRNN_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("textrnn"))


def load_ag_news(data_dir: str | Path | None = None, limit: int | None = None, download: bool = True) -> Dataset:
    """AG News train and test splits.

    With `data_dir`, read `train.csv` and `test.csv` (each may be `.csv.gz`) from it; a partial training file
    such as `train_partial_581rows.csv.gz` is accepted with a warning. Without it, use the cached copy under
    `default_data_home()/ag_news`, downloading and checking the canonical files first if needed.
    `limit` keeps the first N training rows, as the lesson's `take(N)` does.
    """
    notes: list[str] = []
    if data_dir is None:
        directory = default_data_home() / "ag_news"
        if download:
            _ensure_downloaded(directory)
    else:
        directory = Path(data_dir).expanduser()
        if not directory.is_dir():
            raise DataError(f"data directory {directory} does not exist (it should hold AG News train.csv and test.csv)")

    test_path, _ = _find_split(directory, "test")
    if test_path is None:
        raise DataError(f"{directory} has no test.csv or test.csv.gz (AG News layout: class,title,description)")
    train_path, partial = _find_split(directory, "train")
    if train_path is None:
        raise DataError(f"{directory} has no train.csv or train.csv.gz (AG News layout: class,title,description)")

    train = read_ag_news_csv(train_path)
    test = read_ag_news_csv(test_path)
    if partial:
        note = (f"{train_path.name} is a partial training file ({len(train):,} rows; the full AG News training "
                f"split has {AG_NEWS_TRAIN_ROWS:,}): fine for smoke tests, not for results")
        log.warning(note)
        notes.append(note)
    if limit is not None:
        if limit < 1:
            raise TextrnnError(f"--limit must be a positive number of rows, got {limit}")
        train = train.take(limit)
    return Dataset("ag_news", train, test, AG_NEWS_CLASSES, notes)


# -- downloading ------------------------------------------------------------------------------------------------
def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
            reason = getattr(exc, "reason", exc)
            raise DataError(f"could not download {url} ({reason})") from None
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


def _ensure_downloaded(directory: Path, urls: dict[str, str] | None = None, md5s: dict[str, str] | None = None) -> None:
    urls = urls or AG_NEWS_URLS
    md5s = md5s or AG_NEWS_MD5
    for split in ("train", "test"):
        found, _ = _find_split(directory, split)
        if found is not None:
            continue
        dest = directory / f"{split}.csv"
        log.warning("AG News %s.csv is not cached; downloading it from %s to %s", split, urls[split], dest)
        try:
            download_file(urls[split], dest, md5s[split])
        except DataError as exc:
            raise DataError(
                f"{exc}. To use a local copy instead, pass --data-dir DIR (a folder holding train.csv and "
                f"test.csv, or .csv.gz), or put the files in {directory} (set TEXTRNN_DATA to move that cache)"
            ) from None
        log.warning("verified %s (MD5 %s)", dest, md5s[split])
