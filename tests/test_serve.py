"""`textrnn serve`: the API's answers and status codes, micro-batching, limits, metrics, and robustness against bad
clients, on a model trained on ag_news_mini. Servers listen on 127.0.0.1 only and are stopped by the test."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from textrnn import TextClassifier  # noqa: E402
from textrnn.errors import TextrnnError  # noqa: E402
from textrnn.serve import ServerSettings, create_app, load_served_model  # noqa: E402
from textrnn.serve.batching import MicroBatcher, QueueFull  # noqa: E402


@pytest.fixture(scope="module")
def clf(served_model_dir):
    return TextClassifier.from_pretrained(served_model_dir)


@pytest.fixture(scope="module")
def texts(ag_news_mini):
    return ag_news_mini.test.texts()[:64]


def make_app(served_model_dir, **settings):
    return create_app([load_served_model(served_model_dir, "agnews", examples=["Stocks fell"])],
                      ServerSettings(**settings))


@pytest.fixture
def client(served_model_dir):
    with TestClient(make_app(served_model_dir)) as c:
        yield c


def test_predict_one_and_many_give_the_models_probabilities(client, clf, texts):
    one = client.post("/v1/predict", json={"text": texts[0]})
    assert one.status_code == 200, one.text
    expected = clf.predict_proba(texts[:10])
    got = one.json()["predictions"][0]
    assert got["label"] == clf.classes_[int(expected[0].argmax())]
    assert np.allclose([got["probabilities"][c] for c in clf.classes_], expected[0], atol=1e-6)
    many = client.post("/v1/models/agnews/predict", json={"texts": texts[:10]}).json()
    assert many["model"] == "agnews" and len(many["predictions"]) == 10
    rows = np.array([[p["probabilities"][c] for c in clf.classes_] for p in many["predictions"]])
    assert np.allclose(rows, expected, atol=1e-6)
    assert [p["label"] for p in many["predictions"]] == clf.predict(texts[:10])
    assert "attributions" not in many["predictions"][0]


def test_model_info_health_readiness_metrics_and_docs(client, clf):
    info = client.get("/v1/model").json()
    assert info["labels"] == list(clf.classes_) and info["name"] == "agnews"
    assert info["architecture"]["cell"] == "lstm" and info["architecture"]["bidirectional"] is True
    assert info["architecture"]["parameters"] == clf.parameter_counts["pytorch"]
    assert 0.5 < info["test_metrics"]["accuracy"] <= 1 and info["test_metrics"]["n"] == 400
    assert info["examples"] == ["Stocks fell"] and info["micro_batching"] is True
    assert info["linear_part"] == ({"weight": clf.linear_weight_} if clf.linear_part_ is not None else None)
    assert client.get("/v1/models").json()["default"] == "agnews"
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    for _ in range(3):
        client.post("/v1/predict", json={"texts": ["a b", "c d"]})
    metrics = client.get("/metrics").text
    assert 'textrnn_requests_total{route="/v1/predict",status="200"} 3.0' in metrics
    assert 'textrnn_texts_total{model="agnews"} 6.0' in metrics
    assert 'textrnn_batch_texts_count{model="agnews"} 3.0' in metrics
    assert 'textrnn_request_seconds_count{route="/v1/predict"} 3.0' in metrics
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/models/{name}/predict", "/v1/models", "/healthz"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text  # served from the package, offline
    for asset in re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', docs.text):
        assert client.get(asset).status_code == 200, asset
    page = client.get("/")
    assert page.status_code == 200 and "<textarea" in page.text and client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize("body, field", [
    ('{"text": ', ["body", 9]),  # malformed JSON: where it broke
    ('{"text": 5}', ["body", "text"]),
    ('{"texts": "one string"}', ["body", "texts"]),
    ('{"texts": ["ok", 7]}', ["body", "texts", 1]),
    ('{"text": ""}', ["body", "text"]),
    ('{"text": "   "}', ["body", "text"]),
    ('{"texts": ["fine", ""]}', ["body", "texts", 1]),
    ('{"texts": []}', ["body", "texts"]),
    ('{"text": "a", "colour": "red"}', ["body", "colour"]),
    ('{"text": "a", "explain": "yes"}', ["body", "explain"]),
    ('{}', ["body"]),
    ('[1, 2]', ["body"]),
])
def test_bad_bodies_are_422_naming_the_field(client, body, field):
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in [e["loc"] for e in response.json()["detail"]]


def test_limits_are_413_unknown_models_404(served_model_dir):
    with TestClient(make_app(served_model_dir, max_body_bytes=2_000, max_texts=4, max_text_chars=300)) as c:
        assert c.post("/v1/predict", json={"text": "word " * 500}).status_code == 413  # body over 2,000 bytes
        chunked = c.post("/v1/predict", content=iter([b'{"text": "', b"x" * 3000, b'"}']),
                         headers={"content-type": "application/json"})  # no Content-Length: counted as it comes
        assert chunked.status_code == 413
        assert c.post("/v1/predict", json={"texts": ["a"] * 5}).status_code == 413
        long_text = c.post("/v1/predict", json={"texts": ["a", "b" * 301]})
        assert long_text.status_code == 413 and "text 1" in long_text.json()["detail"]
        assert c.post("/v1/predict", json={"texts": ["a"] * 4}).status_code == 200
        missing = c.post("/v1/models/nope/predict", json={"text": "a"})
        assert missing.status_code == 404 and "agnews" in missing.json()["detail"]
        assert c.post("/v1/predict", json={"text": "a", "model": "nope"}).status_code == 404
        assert c.get("/v1/models/nope").status_code == 404
        assert c.post("/v1/models/agnews/predict", json={"text": "a", "model": "other"}).status_code == 422
        metrics = c.get("/metrics").text
        assert 'status="413"' in metrics and 'status="500"' not in metrics


def test_several_models_by_name(served_model_dir, tmp_path, ag_news_mini):
    small = TextClassifier(cell="gru", hidden_size=8, bidirectional=False, epochs=1, progress=False)
    train = ag_news_mini.train
    small.fit(train.texts()[:1500], ag_news_mini.labels_of(train)[:1500])
    small.save_pretrained(tmp_path / "gru")
    app = create_app([load_served_model(served_model_dir, "big"), load_served_model(tmp_path / "gru")])
    with TestClient(app) as c:
        assert [m["name"] for m in c.get("/v1/models").json()["models"]] == ["big", "gru"]
        text = "The striker scored twice in the second half"
        gru = c.post("/v1/models/gru/predict", json={"text": text}).json()["predictions"][0]
        by_body = c.post("/v1/predict", json={"text": text, "model": "gru"}).json()["predictions"][0]
        assert gru == by_body
        assert np.allclose([gru["probabilities"][k] for k in small.classes_], small.predict_proba([text])[0],
                           atol=1e-6)
        assert c.get("/v1/models/gru").json()["architecture"]["cell"] == "gru"
    with pytest.raises(ValueError, match="share a name"):
        create_app([load_served_model(served_model_dir, "x"), load_served_model(tmp_path / "gru", "x")])


def test_explain_true_adds_attributions_that_add_up(client, clf):
    text = "Oil prices rose sharply as investors worried about supply"
    response = client.post("/v1/predict?explain=true", json={"text": text})
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    attributions = prediction["attributions"]
    assert attributions["method"] == "integrated-gradients"
    assert [text[t["start"]:t["end"]].lower() for t in attributions["tokens"]] == text.lower().split()
    # completeness: the scores add up to the logit's distance from the all-padding baseline
    explanation = clf.explain([text])[0]
    difference = explanation.logit - explanation.baseline_logit
    total = sum(t["score"] for t in attributions["tokens"])
    assert abs(total - difference) <= 0.01 * abs(difference)
    assert prediction["label"] == clf.predict([text])[0]
    occlusion = client.post("/v1/predict", json={"text": text, "explain": True, "method": "occlusion"}).json()
    assert occlusion["predictions"][0]["attributions"]["method"] == "occlusion"


# -- micro-batching ---------------------------------------------------------------------------------------------
def test_concurrent_requests_are_gathered_and_each_gets_its_own_answer(served_model_dir, clf, texts, live_server):
    url = live_server(make_app(served_model_dir, window_ms=30, max_batch=64))
    answers = [None] * len(texts)
    go = threading.Barrier(len(texts))

    def ask(i):
        with httpx.Client(base_url=url, timeout=30) as http:
            go.wait()
            answers[i] = http.post("/v1/predict", json={"text": texts[i]}).json()["predictions"][0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    alone = np.concatenate([clf.predict_proba([t]) for t in texts])
    got = np.array([[a["probabilities"][c] for c in clf.classes_] for a in answers])
    assert np.abs(got - alone).max() < 1e-5
    assert [a["label"] for a in answers] == [clf.classes_[i] for i in alone.argmax(1)]
    metrics = httpx.get(f"{url}/metrics").text
    batches = float(re.search(r'textrnn_batch_texts_count\{model="agnews"\} (\S+)', metrics).group(1))
    assert batches < len(texts) / 2, f"{len(texts)} concurrent requests ran in {batches:.0f} batches"


def test_micro_batcher_is_bounded_and_answers_in_order():
    release = threading.Event()
    seen = []

    def run(batch):
        release.wait(10)
        seen.append(list(batch))
        return np.array([[len(t)] for t in batch], dtype=np.float32)

    async def scenario():
        from concurrent.futures import ThreadPoolExecutor

        batcher = MicroBatcher(run, ThreadPoolExecutor(1), window_ms=5, max_batch=8, max_queue=5)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["a"]))  # taken by the worker, which then blocks in run
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(batcher.submit(t)) for t in (["bb", "ccc"], ["dddd", "eeeee", "ffffff"])]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):  # 5 texts wait already
            await batcher.submit(["g"])
        release.set()
        results = [await first] + [await w for w in waiting]
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert [r[:, 0].tolist() for r in results] == [[1], [2, 3], [4, 5, 6]]
    assert seen == [["a"], ["bb", "ccc", "dddd", "eeeee", "ffffff"]]  # the two waiting requests ran as one batch


def test_a_full_queue_answers_503_with_retry_after(served_model_dir, live_server):
    model = load_served_model(served_model_dir, "agnews")
    release, entered = threading.Event(), threading.Event()
    slow = model.predict_proba

    def blocked(texts):
        entered.set()
        release.wait(30)
        return slow(texts)

    model.predict_proba = blocked
    url = live_server(create_app([model], ServerSettings(window_ms=0, max_batch=1, max_queue=3, max_texts=2)))
    statuses, retry = [], []

    def ask(body):
        r = httpx.post(f"{url}/v1/predict", json=body, timeout=60)
        statuses.append(r.status_code)
        retry.append(r.headers.get("retry-after"))

    first = threading.Thread(target=ask, args=({"text": "held"},))
    first.start()
    assert entered.wait(10)  # the first request is in the forward pass; the queue is empty again
    queued = [threading.Thread(target=ask, args=({"texts": ["a", "b"]},)), threading.Thread(target=ask, args=(
        {"text": "c"},))]
    for t in queued:
        t.start()
        time.sleep(0.2)
    ask({"text": "one too many"})  # 3 texts wait: refused at once
    assert statuses == [503] and retry == ["1"]
    release.set()
    for t in [first, *queued]:
        t.join(30)
    assert sorted(statuses) == [200, 200, 200, 503]
    assert 'textrnn_rejected_total{model="agnews"} 1.0' in httpx.get(f"{url}/metrics").text


# -- robustness -----------------------------------------------------------------------------------------------------
def _raw(port: int, data: bytes, read: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        return s.recv(65536) if read else b""


def test_dropped_clients_and_1000_malformed_requests_leave_the_server_answering(served_model_dir, clf, live_server):
    url = live_server(make_app(served_model_dir, window_ms=20))
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"texts": ["Stocks fell as oil rose"] * 50}).encode()
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    for _ in range(20):
        _raw(port, head + body[: len(body) // 2])  # the client dies half-way through its body
        _raw(port, head + body)  # ... or right after sending it, before the answer
        _raw(port, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Le")  # ... or inside its headers
    assert b"400" in _raw(port, b"NOT HTTP AT ALL\r\n\r\n", read=True)
    rng = np.random.default_rng(0)
    garbage = [b'{"text": ', b'{"texts": [1, 2]}', b'{"text": null}', b"[]", b'"text"', b"\xff\xfe\x00",
               b'{"text": "a", "texts": ["b"]}', b'{"text": {"nested": 1}}', b'{"texts": [""]}', b"", b"{}" * 5000]
    statuses = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(1000):
            content = garbage[i % len(garbage)] if i % 3 else bytes(rng.integers(0, 256, 64, dtype=np.uint8))
            kind = "application/json" if i % 7 else "text/plain"
            status = http.post("/v1/predict", content=content, headers={"content-type": kind}).status_code
            statuses[status] = statuses.get(status, 0) + 1
        assert set(statuses) == {422}, statuses
        text = "The striker scored twice as United won the derby"
        answer = http.post("/v1/predict", json={"text": text})
        assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == clf.predict([text])[0]
        assert http.get("/readyz").status_code == 200
        assert 'status="500"' not in http.get("/metrics").text


# -- the command ----------------------------------------------------------------------------------------------------
def test_textrnn_serve_starts_answers_and_stops_on_ctrl_c(served_model_dir, tmp_path):
    examples = tmp_path / "examples.txt"
    examples.write_text("Stocks fell\n\nThe striker scored\n")
    process = subprocess.Popen([sys.executable, "-m", "textrnn", "serve", str(served_model_dir), "--port", "0",
                                "--name", "news", "--examples", str(examples)],
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.1)
        assert httpx.get(f"{url}/v1/models/news").json()["examples"] == ["Stocks fell", "The striker scored"]
        assert httpx.post(f"{url}/v1/predict", json={"text": "Stocks fell"}).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        process.stderr.close()


@pytest.mark.parametrize("args, message", [
    (["serve", "/nonexistent/model"], "/nonexistent/model"),
    (["serve", "{model}", "--name", "bad name"], "cannot be used in a URL"),
    (["serve", "{model}", "{model}"], "share a name"),
    (["serve", "{model}", "--max-texts", "10", "--max-queue", "5"], "cannot exceed max_queue"),
])
def test_serve_refuses_to_start_with_one_clear_line(served_model_dir, capsys, args, message):
    from textrnn.cli import main

    assert main([a.format(model=served_model_dir) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("textrnn: error:") and len(err.splitlines()) == 1


def test_serve_refuses_a_taken_port(served_model_dir, capsys):
    from textrnn.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", str(served_model_dir), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serving_is_off_without_the_extra_message_names_it():
    # the import check runs before anything loads: with fastapi importable it passes, so this checks the wording
    # on a subprocess where fastapi is blocked
    code = ("import sys; sys.modules['fastapi'] = None\nfrom textrnn.cli import main\n"
            "sys.exit(main(['serve', 'anything']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 2 and "pip install 'textrnn[serve]'" in result.stderr


def test_onnx_runtime_serves_the_export_and_refuses_to_explain(served_model_dir, clf, texts, tmp_path):
    pytest.importorskip("onnxruntime")
    import shutil

    from textrnn.deploy.export import export_onnx

    model_dir = tmp_path / "agnews"
    shutil.copytree(served_model_dir, model_dir)
    export_onnx(model_dir, model_dir / "onnx")
    with TestClient(create_app([load_served_model(model_dir, "onnx", runtime="onnx")])) as c:
        info = c.get("/v1/model").json()
        assert info["runtime"] == "onnx" and info["explain"] is False and info["labels"] == list(clf.classes_)
        answer = c.post("/v1/predict", json={"texts": texts[:20]}).json()["predictions"]
        got = np.array([[p["probabilities"][k] for k in clf.classes_] for p in answer])
        assert np.abs(got - clf.predict_proba(texts[:20])).max() < 1e-5
        refused = c.post("/v1/predict?explain=true", json={"text": texts[0]})
        assert refused.status_code == 400 and "--runtime torch" in refused.json()["detail"]


def test_a_served_model_loads_on_the_device_asked_for(served_model_dir):
    model = load_served_model(served_model_dir, "agnews", device="cpu")
    assert next(model.classifier.model_.parameters()).device.type == "cpu"
    with pytest.raises(TextrnnError, match="unknown device 'tpu'"):
        load_served_model(served_model_dir, "agnews", device="tpu")
    with pytest.raises(TextrnnError, match="is for the torch runtime"):
        load_served_model(served_model_dir, "agnews", runtime="onnx", device="cpu")
