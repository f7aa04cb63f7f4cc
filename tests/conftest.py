from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ag_news_mini(data_root):
    from textrnn import load_ag_news

    return load_ag_news(data_root / "ag_news_mini")


@pytest.fixture(scope="session")
def served_model_dir(tmp_path_factory, ag_news_mini):
    """The default BiLSTM, one epoch on ag_news_mini, saved with its test metrics (what `textrnn serve` reads)."""
    from textrnn import TextClassifier
    from textrnn.evaluation import evaluate, write_report

    test = ag_news_mini.test
    # adversarial training changes nothing a served model does; off, the fit takes about half the time
    clf = TextClassifier(epochs=1, seed=0, adversarial=0.0, progress=False)
    clf.fit(ag_news_mini.train.texts(), ag_news_mini.labels_of(ag_news_mini.train))
    directory = tmp_path_factory.mktemp("served") / "agnews"
    clf.save_pretrained(directory)
    write_report(evaluate(clf, test.texts()[:400], ag_news_mini.labels_of(test)[:400]), directory)
    return directory


@pytest.fixture
def live_server():
    """Start a textrnn app under uvicorn on 127.0.0.1 (a free port) in a thread; yields a function that takes the
    app and returns its base URL. Every server it started is stopped when the test ends."""
    import socket
    import threading
    import time

    import uvicorn

    started = []

    def start(app) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread, sock))
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread, sock in started:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "the test server did not stop"
