"""`textrnn serve`: models over HTTP with a web page (FastAPI + uvicorn, the `serve` extra)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from ..errors import TextrnnError
from .flags import add_device_flag

log = logging.getLogger("textrnn")
EXAMPLES_SHOWN = 6
EXAMPLE_CHARS = 400  # longer test texts make poor buttons


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve models over HTTP: a JSON API, Prometheus metrics and a web page")
    p.add_argument("models", nargs="+", metavar="MODEL", help="model directories (or ONNX exports with --runtime "
                   "onnx); the first is the default one")
    p.add_argument("--name", action="append", default=[], help="a model's name in URLs, once per MODEL in order "
                   "(default: its directory's name)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine "
                   "only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--runtime", choices=["torch", "onnx"], default="torch",
                   help="torch (default; can explain), or onnx: onnxruntime on each model's export")
    p.add_argument("--int8", action="store_true", help="with --runtime onnx: the int8-quantized exports")
    add_device_flag(p)
    g = p.add_argument_group("micro-batching and limits")
    g.add_argument("--batch-window-ms", type=float, default=2.0, help="how long a batch waits for more requests "
                   "(default: %(default)s)")
    g.add_argument("--max-batch", type=int, default=64, help="texts in one forward pass (default: %(default)s)")
    g.add_argument("--no-micro-batching", action="store_true", help="run every request alone (window 0, batch 1)")
    g.add_argument("--max-queue", type=int, default=1024, help="texts waiting per model before requests get 503 "
                   "(default: %(default)s)")
    g.add_argument("--max-texts", type=int, default=256, help="texts in one request (default: %(default)s)")
    g.add_argument("--max-text-chars", type=int, default=20_000, help="characters in one text (default: "
                   "%(default)s)")
    g.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request body size (default: "
                   "%(default)s)")
    p.add_argument("--examples", metavar="FILE", help="example texts for the page, one per line (default: a few "
                   "from each model's test split, where its run recorded one)")
    p.add_argument("--threads", type=int, help="PyTorch's threads for inference (default: one fewer than the cores, "
                   "leaving one to the server's event loop)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default: %(default)s; info logs every request)")
    p.set_defaults(func=run)


def example_texts(model_dir: str) -> list[str]:
    """A few texts of the test split the model's run recorded, taken in turn from each class; [] if none."""
    from .evaluate import recorded_test_source, run_metadata

    metadata = run_metadata(model_dir)
    source = recorded_test_source(metadata, None)
    if source is None:
        return []
    try:
        dataset = source.load()
        test = dataset.test
        texts, labels = test.texts(metadata.get("text") or dataset.text), dataset.labels_of(test)
    except (TextrnnError, OSError) as exc:
        log.warning("no examples for %s: its test split could not be read (%s)", model_dir, exc)
        return []
    by_class: dict = {}
    for text, label in zip(texts, labels):
        if len(text) <= EXAMPLE_CHARS and len(by_class.setdefault(label, [])) < EXAMPLES_SHOWN:
            by_class[label].append(text)
    rounds = zip(*by_class.values()) if by_class else []
    return [text for round_ in rounds for text in round_][:EXAMPLES_SHOWN]


def default_threads() -> int:
    """One core fewer than this process may use: the event loop needs one to read and answer requests while the
    network runs (on 2 cores, 2 inference threads took the server from 540 to 150 requests/s unbatched)."""
    return max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else max(1, os.cpu_count() - 1)


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound before uvicorn starts, so that a taken port is one clear line, not a server log."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so that asyncio sets TCP_NODELAY on every accepted connection (it checks the protocol):
    # with proto 0 each kept-alive answer waits ~40 ms on Nagle and the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TextrnnError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError:
        raise TextrnnError("serving needs FastAPI, uvicorn and prometheus-client: pip install 'textrnn[serve]'") \
            from None
    if args.runtime == "torch":
        from ..model_files import check_model_directory

        for path in args.models:  # each one, before seconds of imports
            check_model_directory(path)
    from ..serve import ServerSettings, create_app, load_served_model

    if args.name and len(args.name) != len(args.models):
        raise TextrnnError(f"{len(args.name)} --name for {len(args.models)} models: give one per model, in order")
    if args.int8 and args.runtime != "onnx":
        raise TextrnnError("--int8 goes with --runtime onnx")
    import torch

    torch.set_num_threads(max(1, args.threads or default_threads()))
    shared_examples = None
    if args.examples:
        path = Path(args.examples)
        if not path.is_file():
            raise TextrnnError(f"no such file: {path}")
        shared_examples = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = args.name or [None] * len(args.models)
    models = [load_served_model(path, name, args.runtime, args.int8,
                                shared_examples if shared_examples is not None else example_texts(path), args.device)
              for path, name in zip(args.models, names)]
    window, batch = (0.0, 1) if args.no_micro_batching else (args.batch_window_ms, args.max_batch)
    try:
        settings = ServerSettings(window_ms=window, max_batch=batch, max_queue=args.max_queue,
                                  max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
                                  max_text_chars=args.max_text_chars)
        app = create_app(models, settings)
    except ValueError as exc:
        raise TextrnnError(str(exc)) from None
    sock = listening_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {', '.join(m.name for m in models)} at http://{shown}:{port}/ (API docs at /docs; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=args.log_level in ("info",
                                                                                                      "debug")))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the Ctrl-C it caught: the normal stop
        pass
    print("textrnn: server stopped", file=sys.stderr)
    return 0
