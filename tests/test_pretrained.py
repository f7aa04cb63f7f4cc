"""Model directories: format 2 separates the network (config.json) from the run (trainer_state.json); format 1
directories (textrnn 0.1) still load and predict identically; unknown formats and bad values are one clear error."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from textrnn import TextClassifier, TextrnnError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def small(ag_news_mini):
    train = ag_news_mini.train.take(800)
    clf = TextClassifier(cell="lstm", embedding_dim=8, hidden_size=6, max_tokens=800, epochs=1, batch_size=64,
                         max_len=20, linear_part=None, progress=False)  # the network's files (test_linear_part.py
    # has the linear part's)
    return clf.fit(train.texts("title"), train.labels, classes=ag_news_mini.classes,
                   metadata={"dataset": "ag_news", "text": "title"})


def test_config_holds_the_architecture_and_trainer_state_the_run(small, tmp_path):
    out = small.save_pretrained(tmp_path / "m")
    config = json.loads((out / "config.json").read_text())
    assert set(config) == {"format", "textrnn_version", "architecture", "model", "tokenizer", "labels"}
    assert config["format"] == 2 and config["architecture"] == "RNNClassifier"
    assert config["tokenizer"] == {"type": "word", "max_tokens": 800, "max_len": 20, "truncate": "head",
                                   "file": "tokenizer.json"}
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["params"]["epochs"] == 1 and len(state["history"]) == 1
    assert state["run"]["metadata"] == {"dataset": "ag_news", "text": "title"}
    # the three model files alone are a complete model (max_len comes from config.json)
    (out / "trainer_state.json").unlink()
    bare = TextClassifier.from_pretrained(out)
    texts = ["Stocks fell as oil hit a record " * 10, "The striker scored twice"]
    assert np.array_equal(bare.predict_proba(texts), small.predict_proba(texts))
    assert bare.max_len == 20 and bare.history_ == []


def test_a_format_1_directory_loads_and_predicts_identically(tmp_path):
    expected = json.loads((FIXTURES / "model-v1-predictions.json").read_text())
    clf = TextClassifier.from_pretrained(FIXTURES / "model-v1")
    proba = clf.predict_proba(expected["texts"])
    # the same numbers to float rounding: the fixture's were computed on another CPU, whose kernels (AMX, AVX-512)
    # may round the last bit differently; a weight loaded into the wrong place would be off by far more
    np.testing.assert_allclose(proba, np.asarray(expected["probabilities"], dtype=np.float32), rtol=0, atol=1e-6)
    assert clf.predict(expected["texts"]) == expected["labels"]
    assert clf.cell == "gru" and clf.max_len == 30 and clf.metadata["dataset"] == "ag_news"
    assert len(clf.history_) == 1
    # a setting the directory predates reads as what its network is, not as today's default: no n-grams
    assert clf.ngrams == 0 and clf.get_params()["ngrams"] == 0
    assert clf.linear_part is None and clf.linear_part_ is None  # nor a linear n-gram part
    # saving it again writes format 2, which loads to the same predictions
    out = clf.save_pretrained(tmp_path / "again")
    assert json.loads((out / "config.json").read_text())["format"] == 2
    assert np.array_equal(TextClassifier.from_pretrained(out).predict_proba(expected["texts"]), proba)


def test_an_unknown_format_is_one_clear_error(small, tmp_path):
    out = small.save_pretrained(tmp_path / "m")
    config = json.loads((out / "config.json").read_text())
    config["format"] = 7
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(TextrnnError, match="has format 7; this textrnn .* reads formats 1 and 2"):
        TextClassifier.from_pretrained(out)


def test_compare_reads_both_formats(small, tmp_path, capsys):
    from textrnn.cli import main

    new = small.save_pretrained(tmp_path / "new")
    old = shutil.copytree(FIXTURES / "model-v1", tmp_path / "old")
    assert main(["compare", "--json", str(new), str(old)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["BiLSTM 1x6, emb 8", "BiGRU 1x6, emb 8"]
    assert [r["epochs run"] for r in rows] == [1, 1]


# -- a model directory is untrusted input -----------------------------------------------------------------------
def test_a_tampered_vocab_size_is_one_line_and_exit_2_without_allocating(small, tmp_path):
    import subprocess
    import sys

    out = small.save_pretrained(tmp_path / "m")
    config = json.loads((out / "config.json").read_text())
    config["model"]["vocab_size"] = 1_000_000_000_000
    (out / "config.json").write_text(json.dumps(config))
    # 4 GB of address space: a 512 TB embedding could not even be attempted (and would fail differently)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
    result = subprocess.run([sys.executable, "-c", limit + "from textrnn.cli import main; import sys; "
                             f"sys.exit(main(['predict', {str(out)!r}, 'Stocks fell']))"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.json: model.vocab_size is 1000000000000" in lines[0]
    # a smaller lie, within the bounds: the weights file disagrees, and says so
    config["model"]["vocab_size"] = 100_000_000 // 2
    (out / "config.json").write_text(json.dumps(config))
    rows = small.model_.config.ngram_buckets  # the bag of n-grams' rows come after the words'
    with pytest.raises(TextrnnError, match=rf"does not match config.json: encoder.embedding.weight is \[{800 + rows}, "
                                           rf"8\] in the file but \[{50_000_000 + rows}, 8\]"):
        TextClassifier.from_pretrained(out)


def test_tokenizer_and_labels_are_checked_against_the_network(small, tmp_path):
    out = small.save_pretrained(tmp_path / "m")
    config = json.loads((out / "config.json").read_text())
    config["labels"] = config["labels"][:3]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(TextrnnError, match=r"labels holds 3 names .* \(model.num_classes\) has 4"):
        TextClassifier.from_pretrained(out)
    small.save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    config["tokenizer"]["type"] = "wordpiece"
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(TextrnnError, match="holds a WordLevel tokenizer, but the model was trained with the "
                                           "'wordpiece' tokenizer"):
        TextClassifier.from_pretrained(out)


def _mutations():
    from hypothesis import strategies as st

    values = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**13), st.floats(allow_nan=True),
                       st.text(max_size=8), st.lists(st.integers(0, 5), max_size=3), st.just({}))
    config_paths = st.sampled_from([("format",), ("architecture",), ("labels",), ("tokenizer",),
                                    ("tokenizer", "type"), ("tokenizer", "max_tokens"), ("tokenizer", "max_len"),
                                    ("tokenizer", "truncate"), ("model", "vocab_size"), ("model", "num_classes"),
                                    ("model", "cell"), ("model", "embedding_dim"), ("model", "hidden_size"),
                                    ("model", "layers"), ("model", "bidirectional"), ("model", "dropout"),
                                    ("model", "mask"), ("model", "pooling"), ("model", "extra")])
    config = st.tuples(st.just("config"), config_paths, values)
    header = st.tuples(st.just("header"), st.sampled_from(["length", "shape", "offsets", "dtype", "name"]),
                       st.integers(0, 2**64 - 1))
    raw = st.tuples(st.sampled_from(["tokenizer.json", "model.safetensors", "config.json"]),
                    st.sampled_from(["truncate", "flip"]), st.integers(0, 10**6))
    return st.one_of(config, header, raw)


def _apply(directory: Path, mutation) -> None:
    import struct

    kind, where, value = mutation
    if kind == "config":
        config = json.loads((directory / "config.json").read_text())
        node = config
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value
        (directory / "config.json").write_text(json.dumps(config))
    elif kind == "header":
        path = directory / "model.safetensors"
        data = path.read_bytes()
        n = struct.unpack("<Q", data[:8])[0]
        header, body = json.loads(data[8 : 8 + n]), data[8 + n :]
        if where == "length":
            path.write_bytes(struct.pack("<Q", value) + data[8:])
            return
        names = sorted(k for k in header if k != "__metadata__")
        name = names[value % len(names)]
        if where == "shape":
            header[name]["shape"] = [value % 10**13, 8]
        elif where == "offsets":
            header[name]["data_offsets"] = [0, value % 10**13]
        elif where == "dtype":
            header[name]["dtype"] = ["F64", "BF16", "I64", "F16"][value % 4]
        else:
            header["encoder.extra"] = header.pop(name)
        raw = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    else:
        path = directory / kind
        data = bytearray(path.read_bytes())
        at = value % max(len(data), 1)
        if where == "truncate":
            data = data[:at]
        else:
            data[at] ^= 0xFF
        path.write_bytes(bytes(data))


def test_fuzzed_model_directories_load_correctly_or_fail_cleanly(small, tmp_path_factory, monkeypatch):
    from datetime import timedelta

    from hypothesis import HealthCheck, given, settings

    import textrnn.pretrained as pretrained
    from textrnn.models import RNNClassifier

    template = small.save_pretrained(tmp_path_factory.mktemp("template") / "m")
    built = []

    class Guarded(RNNClassifier):
        """Refuses to build a network larger than the weights file it is loaded from."""

        def __init__(self, config):
            size = sum(int(np.prod(s)) for s in RNNClassifier.weight_shapes(config).values()) * 4
            assert size <= built[-1], f"would allocate {size:,} bytes for a {built[-1]:,}-byte weights file"
            super().__init__(config)

    monkeypatch.setitem(pretrained.ARCHITECTURES, "RNNClassifier", Guarded)

    @settings(max_examples=300, deadline=timedelta(seconds=10),
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(mutation=_mutations())
    def check(mutation):
        directory = tmp_path_factory.mktemp("fuzz") / "m"
        shutil.copytree(template, directory)
        _apply(directory, mutation)
        built.append((directory / "model.safetensors").stat().st_size)
        try:
            clf = TextClassifier.from_pretrained(directory)
        except TextrnnError as exc:
            assert "\n" not in str(exc)
            return
        assert clf.predict_proba(["Stocks fell as oil hit a record"]).shape == (1, len(clf.classes_))

    check()


def test_a_model_is_written_only_over_an_earlier_run_or_an_empty_directory(tmp_path):
    from textrnn.model_files import check_model_target

    check_model_target(tmp_path / "new")  # not there yet
    check_model_target(tmp_path)  # empty
    for inside in ("checkpoints", "tensorboard", "lm"):  # what a run writes before its model
        run = tmp_path / f"run-{inside}" / inside
        run.mkdir(parents=True)
        if inside == "lm":  # --pretrain's language model, saved
            (run / "config.json").write_text("{}")
        check_model_target(run.parent)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "lm").mkdir()  # a folder of that name, holding no model, is not one
    with pytest.raises(TextrnnError, match="exists and is not a textrnn model directory"):
        check_model_target(tmp_path / "notes")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TextrnnError, match="is a file"):
        check_model_target(tmp_path / "file")
