import gzip
import logging
import urllib.error

import pytest

from textrnn import DataError, load_ag_news
from textrnn.data import datasets as data_module


def test_reads_the_canonical_layout(data_root):
    ds = load_ag_news(data_root / "ag_news_mini")
    assert (len(ds.train), len(ds.test)) == (6000, 1600)
    assert ds.classes == ("World", "Sports", "Business", "Sci/Tech")
    # first row of the canonical test split: class 3 (Business), "Fears for T N pension after talks"
    assert ds.train.columns["title"][0] == "Fears for T N pension after talks" and ds.train.labels[0] == 2
    assert [ds.train.labels.count(k) for k in range(4)] == [1519, 1493, 1470, 1518]
    joined = ds.train.texts("title+description")[0]
    assert joined == ds.train.columns["title"][0] + " " + ds.train.columns["description"][0]


def test_limit_takes_the_first_rows(data_root):
    ds = load_ag_news(data_root / "ag_news_mini", limit=100)
    assert len(ds.train) == 100 and len(ds.test) == 1600
    assert ds.train.columns["title"][0] == "Fears for T N pension after talks"


def test_partial_training_file_is_accepted_with_a_warning(data_root, caplog):
    with caplog.at_level(logging.WARNING, logger="textrnn"):
        ds = load_ag_news(data_root / "ag_news")
    assert len(ds.train) == 581 and len(ds.test) == 7600
    assert "partial training file" in caplog.text and "120,000" in caplog.text
    assert ds.notes


def test_plain_csv_is_read_as_well_as_gzip(tmp_path, data_root):
    for split in ("train", "test"):
        with gzip.open(data_root / "ag_news_mini" / f"{split}.csv.gz", "rb") as src:
            (tmp_path / f"{split}.csv").write_bytes(src.read())
    ds = load_ag_news(tmp_path)
    assert (len(ds.train), len(ds.test)) == (6000, 1600)


def test_missing_directory_and_split(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_ag_news(tmp_path / "nowhere")
    (tmp_path / "test.csv").write_text('"1","a","b"\n"2","c","d"\n')
    with pytest.raises(DataError, match="no train.csv"):
        load_ag_news(tmp_path)


@pytest.mark.parametrize("row,message", [
    ('"1","only two"', "line 2: expected 3 fields, found 2"),
    ('"7","title","description"', "line 2: class must be an integer from 1 to 4"),
    ('"World","title","description"', "line 2: class must be"),
])
def test_malformed_rows_name_the_file_and_line(tmp_path, row, message):
    (tmp_path / "train.csv").write_text('"1","fine","row"\n' + row + "\n")
    (tmp_path / "test.csv").write_text('"1","a","b"\n')
    with pytest.raises(DataError, match=message) as info:
        load_ag_news(tmp_path)
    assert "train.csv" in str(info.value)


def test_non_utf8_and_empty_files(tmp_path):
    (tmp_path / "train.csv").write_bytes(b'"1","caf\xe9","x"\n')
    (tmp_path / "test.csv").write_text("")
    with pytest.raises(DataError, match="not UTF-8"):
        load_ag_news(tmp_path)
    (tmp_path / "train.csv").write_text('"1","a","b"\n')
    with pytest.raises(DataError, match="test.csv: the file is empty"):
        load_ag_news(tmp_path)


def test_download_checks_md5_and_caches(tmp_path, data_root, monkeypatch):
    # A local "server": file:// URLs to uncompressed copies of the mini split.
    src = tmp_path / "server"
    src.mkdir()
    md5 = {}
    for split in ("train", "test"):
        with gzip.open(data_root / "ag_news_mini" / f"{split}.csv.gz", "rb") as f:
            (src / f"{split}.csv").write_bytes(f.read())
        md5[split] = data_module.md5sum(src / f"{split}.csv")
    urls = {s: (src / f"{s}.csv").as_uri() for s in ("train", "test")}
    monkeypatch.setenv("TEXTRNN_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(data_module, "AG_NEWS_URLS", urls)

    monkeypatch.setattr(data_module, "AG_NEWS_MD5", {**md5, "train": "0" * 32})
    with pytest.raises(DataError, match="checksum mismatch"):
        load_ag_news()
    cache = tmp_path / "cache" / "ag_news"
    assert not (cache / "train.csv").exists() and not list(cache.glob(".*part"))

    monkeypatch.setattr(data_module, "AG_NEWS_MD5", md5)
    ds = load_ag_news()
    assert (len(ds.train), len(ds.test)) == (6000, 1600)
    assert data_module.md5sum(cache / "train.csv") == md5["train"]


def test_offline_download_fails_with_one_clear_message(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TEXTRNN_DATA", str(tmp_path))
    monkeypatch.setattr(data_module.urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as info:
        load_ag_news()
    message = str(info.value)
    assert "could not download" in message and "--data-dir" in message and "TEXTRNN_DATA" in message
    assert not any(tmp_path.rglob("*.csv"))
