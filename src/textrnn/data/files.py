"""Reading labelled texts: CSV, TSV, JSON Lines, Parquet (gzip or not) and folder-per-class layouts.

Files are parsed by pyarrow; this module decides which columns hold the label and the text, checks every row,
and turns problems into one `DataError` that names the file, the row and what is wrong. A split is a set of
named text columns plus a label per row; `Split.texts("title+description")` joins columns with a space, as the
lesson joins an AG News title and description.
"""

from __future__ import annotations

import gzip
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import DataError, TextrnnError

log = logging.getLogger("textrnn")

FORMATS = ("csv", "tsv", "jsonl", "parquet", "folder")
BAD_ROWS = ("error", "skip")


def fingerprint(texts: Sequence[str], labels: Sequence) -> str:
    """SHA-256 of texts and labels in order: what a run records to show which data it trained on."""
    import hashlib

    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f" + str(label).encode("utf-8") + b"\x1e")
    digest.update(str(len(texts)).encode())
    return digest.hexdigest()


@dataclass
class Split:
    """One split: text columns by name, and one label (a class name or an integer) per row."""

    columns: dict[str, list[str]]
    labels: list
    source: str = ""
    skipped: int = 0  # malformed rows left out (--bad-rows skip)

    def __len__(self) -> int:
        return len(self.labels)

    def texts(self, spec: str | Sequence[str] | None = None) -> list[str]:
        """The model's input: one column, or several joined with a space ("title+description")."""
        names = list(self.columns) if spec is None else (spec.split("+") if isinstance(spec, str) else list(spec))
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise TextrnnError(f"no text column {missing[0]!r} in {self.source or 'this split'}: it has "
                               f"{', '.join(self.columns)}")
        if len(names) == 1:
            return list(self.columns[names[0]])
        return [" ".join(parts) for parts in zip(*(self.columns[n] for n in names))]

    def take(self, n: int | None) -> "Split":
        """The first n rows (the lesson's `ds.take(n)`)."""
        if n is None or n >= len(self):
            return self
        return Split({k: v[:n] for k, v in self.columns.items()}, self.labels[:n], self.source, self.skipped)

    def subset(self, rows: Sequence[int]) -> "Split":
        return Split({k: [v[i] for i in rows] for k, v in self.columns.items()}, [self.labels[i] for i in rows],
                     self.source, self.skipped)


@dataclass
class Dataset:
    """Training data, the split validated on after each epoch, and the split `evaluate` reports on."""

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...] | None = None  # names of integer labels 0..K-1, when the data gives them
    validation: Split | None = None  # None: validate on `test`, as the lesson does
    text: str | None = None  # the default input ("title+description"); None: all text columns joined
    notes: list[str] = field(default_factory=list)

    @property
    def val(self) -> Split:
        return self.validation if self.validation is not None else self.test

    def labels_of(self, split: Split) -> list:
        """A split's labels as class names where the dataset names its integer classes (AG News), else as they
        are."""
        if self.classes:
            return [self.classes[y] for y in split.labels]
        return list(split.labels)


# -- bytes ------------------------------------------------------------------------------------------------------
def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read it: {exc}") from None


def check_utf8(data: bytes, path: Path) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); convert the file "
                        f"to UTF-8") from None


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".jsonl", "jsonl"),
                        (".ndjson", "jsonl"), (".json", "jsonl"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(suffix):
            return fmt
    raise DataError(f"{path}: cannot tell the format from the name; pass --format ({', '.join(FORMATS)})")


# -- tables -----------------------------------------------------------------------------------------------------
def has_header(data: bytes, delimiter: str, wanted: Sequence[str | int]) -> bool:
    """Does the first row name the columns?

    Named columns: yes (a name that is missing is then reported with the columns the file has). Otherwise
    decide from the label column (the first wanted index, else 0): labels repeat, a header's name for the label
    column does not, so a first value that never recurs among the next rows' labels is a header.
    """
    import csv

    if any(isinstance(w, str) and not w.isdigit() for w in wanted):
        return True
    index = int(wanted[0]) if wanted else 0
    text = data[: 1 << 20].decode("utf-8", errors="ignore")
    # newline="": the csv module reads the line ends itself (a lone "\r" inside a field is otherwise an error)
    rows = [row for _, row in zip(range(1001), csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))]
    if len(rows) < 2 or index >= len(rows[0]):
        return False
    first = rows[0][index]
    return first not in {row[index] for row in rows[1:] if index < len(row)}


def read_table(path: str | Path, fmt: str | None = None, header: bool | None = None,
               wanted: Sequence[str | int] = (), bad_rows: str = "error"):
    """A pyarrow Table of the file, the number of malformed rows skipped, and the number of header lines.

    `header=None` lets `has_header` decide for CSV/TSV; without a header, columns are numbered "0", "1", ...
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        try:
            table = pq.read_table(path)
        except FileNotFoundError:
            raise DataError(f"no such file: {path}") from None
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
        if table.num_rows == 0:
            raise DataError(f"{path}: the file holds no rows")
        return table, 0, 0
    data = read_bytes(path)
    if not data.strip():
        raise DataError(f"{path}: the file is empty")
    check_utf8(data, path)
    if fmt == "jsonl":
        try:
            table = pajson.read_json(io.BytesIO(data))
        except pa.ArrowException as exc:
            raise DataError(f"{path}: not valid JSON Lines: {exc}") from None
        return table, 0, 0
    if fmt not in ("csv", "tsv"):
        raise DataError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")

    delimiter = "\t" if fmt == "tsv" else ","
    if header is None:
        header = has_header(data, delimiter, wanted)
    column_names = None
    if not header:
        import csv

        # the first record as the csv module reads it, line ends (and a stray "\r") handled by the reader
        text = data[: 1 << 20].decode("utf-8", errors="ignore")
        first_row = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        column_names = [str(i) for i in range(len(first_row))]
    bad: list[tuple[int | None, str, int, int]] = []

    def on_invalid_row(row):
        bad.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip" if bad_rows == "skip" else "error"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=column_names, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid_row,
                                             newlines_in_values=True),
        )
    except pa.ArrowException as exc:
        if bad:
            line, text, expected, actual = bad[0]
            where = f"{path}, line {line}" if line else f"{path}"
            raise DataError(f"{where}: expected {expected} fields, found {actual} ({text[:60]!r}); fix the row "
                            f"or pass --bad-rows skip") from None
        raise DataError(f"{path}: cannot parse it as {fmt.upper()}: {exc}") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: the file holds no rows")
    duplicated = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
    if duplicated:
        raise DataError(f"{path}: the header names a column more than once ({', '.join(map(repr, duplicated))}); "
                        f"pass --no-header if the first row is data")
    if bad:
        log.warning("%s: skipped %d malformed row(s) (wrong number of fields)", path, len(bad))
    return table, len(bad), 1 if header else 0


def _column(table, key: str | int, path: Path) -> str:
    names = table.column_names
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and key not in names):
        index = int(key)
        if index >= len(names):
            raise DataError(f"{path}: no column {index} (it has {len(names)} columns)")
        return names[index]
    if key not in names:
        raise DataError(f"{path}: no column {key!r}; its columns are {', '.join(map(str, names))}")
    return key


def read_labelled(path: str | Path, label_column: str | int | None = None,
                  text_columns: Sequence[str | int] | None = None, fmt: str | None = None,
                  header: bool | None = None, bad_rows: str = "error", classes: Sequence[str] | None = None,
                  encoding_errors: str = "strict") -> Split:
    """One labelled split from a file or a folder-per-class directory.

    Defaults: the columns "label" and "text" when the file has them, else the first column is the label and
    the rest are the text (the AG News layout).
    """
    if bad_rows not in BAD_ROWS:
        raise TextrnnError(f"--bad-rows must be one of {', '.join(BAD_ROWS)}, not {bad_rows!r}")
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file or directory: {path}")
    fmt = fmt or detect_format(path)
    if fmt == "folder":
        return read_folder(path, classes=classes, encoding_errors=encoding_errors, bad_rows=bad_rows)

    wanted = [c for c in [label_column, *(text_columns or [])] if c is not None]
    table, skipped, header_lines = read_table(path, fmt, header, wanted, bad_rows)
    names = table.column_names
    if label_column is None:
        label_column = "label" if "label" in names else names[0]
    label_name = _column(table, label_column, path)
    if text_columns:
        text_names = [_column(table, c, path) for c in text_columns]
    elif "text" in names:
        text_names = ["text"]
    else:
        text_names = [n for n in names if n != label_name]
    if not text_names:
        raise DataError(f"{path}: no text column besides the label column {label_name!r}")

    labels = _label_values(table.column(label_name), path, label_name)
    columns = {n: ["" if v is None else str(v) for v in table.column(n).to_pylist()] for n in text_names}
    keep, problems = [], []
    for i, label in enumerate(labels):
        if label is None or (isinstance(label, str) and not label.strip()):
            problems.append((i, "missing label"))
        elif not any(columns[n][i].strip() for n in text_names):
            problems.append((i, "empty text"))
        else:
            keep.append(i)
    if problems:
        i, what = problems[0]
        if bad_rows == "error":
            line = f"line {i + 1 + header_lines}" if fmt in ("csv", "tsv") and not skipped else f"row {i + 1}"
            raise DataError(f"{path}, {line}: {what} ({len(problems)} such row(s)); fix them or pass "
                            f"--bad-rows skip")
        log.warning("%s: skipped %d row(s) with a missing label or an empty text", path, len(problems))
    split = Split({n: columns[n] for n in text_names}, labels, str(path), skipped + len(problems))
    return split.subset(keep) if problems else split


def _label_values(column, path: Path, name: str) -> list:
    import pyarrow.types as pat

    kind = column.type
    values = column.to_pylist()
    if pat.is_integer(kind):
        return values
    if pat.is_floating(kind):
        if any(v is not None and v != int(v) for v in values):
            raise DataError(f"{path}: label column {name!r} holds fractional numbers; labels must be class "
                            f"names or integers")
        return [None if v is None else int(v) for v in values]
    if pat.is_boolean(kind):
        return [None if v is None else int(v) for v in values]
    return [None if v is None else str(v) for v in values]


def read_folder(path: Path, classes: Sequence[str] | None = None, encoding_errors: str = "strict",
                bad_rows: str = "error") -> Split:
    """A folder per class, one text file per document (the aclImdb and BBC News layout)."""
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is not None:
        unknown = sorted(set(classes) - {p.name for p in folders})
        if unknown:
            raise DataError(f"{path}: no class folder {unknown[0]!r}")
        folders = [p for p in folders if p.name in set(classes)]
    if not folders:
        raise DataError(f"{path}: no class folders inside (expected one folder per class of text files)")
    texts, labels, skipped = [], [], 0
    for folder in folders:
        for file in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            data = file.read_bytes()
            if encoding_errors == "strict":
                check_utf8(data, file)
            text = data.decode("utf-8", errors=encoding_errors)
            if not text.strip():
                if bad_rows == "error":
                    raise DataError(f"{file}: empty text; remove it or pass --bad-rows skip")
                skipped += 1
                continue
            texts.append(text)
            labels.append(folder.name)
    if not texts:
        raise DataError(f"{path}: the class folders hold no text files")
    if skipped:
        log.warning("%s: skipped %d empty file(s)", path, skipped)
    return Split({"text": texts}, labels, str(path), skipped)


def label_kind(labels: Sequence) -> str:
    return "numbers" if all(isinstance(y, int) for y in labels) else "names"


def check_labels(train: Split, *others: Split) -> None:
    """Two classes at least, and labels of one kind (numbers or names) across all files."""
    if len(set(train.labels)) < 2:
        raise DataError(f"{train.source}: the labels hold only one class ({train.labels[0]!r}); a classifier "
                        f"needs at least two")
    kind = label_kind(train.labels)
    for other in others:
        if other is not None and label_kind(other.labels) != kind:
            raise DataError(f"the labels are {kind} in {train.source} but {label_kind(other.labels)} in "
                            f"{other.source}; use one kind in every file")


def stratified_split(split: Split, fraction: float, seed: int = 0) -> tuple[Split, Split]:
    """(train, validation) with each class in the same proportion in both, reproducibly."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise TextrnnError(f"--val-split must be between 0 and 1, got {fraction}")
    rows = list(range(len(split)))
    try:
        train_rows, val_rows = train_test_split(rows, test_size=fraction, random_state=seed, stratify=split.labels)
    except ValueError as exc:
        raise DataError(f"cannot hold out a stratified {fraction:.0%} of {split.source}: {exc}") from None
    return split.subset(sorted(train_rows)), split.subset(sorted(val_rows))


def load_files(train: str | Path, validation: str | Path | None = None, test: str | Path | None = None,
               val_split: float | None = None, seed: int = 0, name: str | None = None, **read_kwargs) -> Dataset:
    """A dataset from your own files: a training file (or folder), and an explicit validation file or a
    stratified `val_split` fraction held out from the training rows."""
    train_split = read_labelled(train, **read_kwargs)
    val_split_ = read_labelled(validation, **read_kwargs) if validation is not None else None
    test_split = read_labelled(test, **read_kwargs) if test is not None else None
    check_labels(train_split, val_split_, test_split)
    if val_split_ is None and val_split:
        train_split, val_split_ = stratified_split(train_split, val_split, seed)
    if val_split_ is None and test_split is None:
        raise TextrnnError("no validation data: pass a validation file, or --val-split FRACTION to hold out part "
                           "of the training rows")
    return Dataset(name or Path(train).name, train_split, test_split or val_split_, validation=val_split_)
