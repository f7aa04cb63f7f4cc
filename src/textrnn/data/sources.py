"""Where a run's data comes from, as one value that can be recorded and read back.

A `DataSource` is either a built-in dataset (`dataset`, with an optional local copy in `data_dir`) or your own
files (`train`, `validation`, `test`, and how to read them). `val_split` holds out that stratified fraction of
the training rows for validation wherever the data has no validation split of its own (sst2 has one). A run
records it, so that `textrnn evaluate MODEL` can find the test split the model was trained beside, and `--resume`
the same rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..errors import TextrnnError
from .datasets import load_dataset
from .files import Dataset, load_files, read_labelled, stratified_split

DEFAULT_DATASET = "ag_news"
HELD_OUT = "held out of the training rows: {:.0%}, stratified"


@dataclass(frozen=True)
class DataSource:
    dataset: str | None = None
    data_dir: str | None = None
    train: str | None = None
    validation: str | None = None
    val_split: float | None = None
    test: str | None = None
    format: str | None = None
    label_column: str | int | None = None
    text_columns: tuple[str | int, ...] | None = None
    header: bool | None = None
    bad_rows: str = "error"
    limit: int | None = None  # the first N training rows only (the lesson's take(N))
    seed: int = 0  # for the stratified val_split

    def __post_init__(self) -> None:
        if self.dataset and (self.train or self.test):
            raise TextrnnError("give either --dataset or your own files (--train/--test), not both")
        if self.validation and not self.train:
            raise TextrnnError("--validation goes with --train FILE, not with a built-in dataset")
        if self.limit is not None and self.limit < 1:
            raise TextrnnError(f"--limit must be at least 1, got {self.limit}")

    @property
    def own_files(self) -> bool:
        return bool(self.train or self.test)

    def load(self) -> Dataset:
        """The dataset: training rows (the first `limit`), validation rows, test rows."""
        if not self.own_files:
            dataset = load_dataset(self.dataset or DEFAULT_DATASET, self.data_dir, limit=self.limit,
                                   bad_rows=self.bad_rows)
            if self.val_split and dataset.validation is None:  # sst2 has its own (dev)
                dataset.train, dataset.validation = stratified_split(dataset.train, self.val_split, self.seed)
                dataset.notes.append(HELD_OUT.format(self.val_split))
            return dataset
        if not self.train:
            test = read_labelled(self.test, **self._read_options())
            return Dataset(Path(self.test).name, test, test)
        dataset = load_files(self.train, validation=self.validation, test=self.test, val_split=self.val_split,
                             seed=self.seed, **self._read_options())
        if self.val_split and not self.validation:
            dataset.notes.append(HELD_OUT.format(self.val_split))
        dataset.train = dataset.train.take(self.limit)
        return dataset

    def test_only(self) -> "DataSource":
        """The same source without its training rows: what `evaluate` reads (its test split)."""
        return replace(self, train=None, validation=None, val_split=None, limit=None)

    def _read_options(self) -> dict:
        return dict(fmt=self.format, label_column=self.label_column, text_columns=self.text_columns,
                    header=self.header, bad_rows=self.bad_rows)

    # -- as a record --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able, with paths made absolute so that the record holds from any working directory."""
        record = asdict(self)
        for name in ("data_dir", "train", "validation", "test"):
            if record[name]:
                record[name] = str(Path(record[name]).resolve())
        if record["text_columns"] is not None:
            record["text_columns"] = list(record["text_columns"])
        return record

    @classmethod
    def from_dict(cls, record: dict) -> "DataSource":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        if values.get("text_columns") is not None:
            values["text_columns"] = tuple(values["text_columns"])
        return cls(**values)
